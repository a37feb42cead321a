namespace InstructTune.Templates.Jinja;

// The syntax tree: expressions evaluate to values, statements write output. Every node keeps its source line
// so runtime errors can name it.

public abstract record Node(int Line);

public abstract record Expr(int Line) : Node(Line);
public sealed record Literal(int Line, object? Value) : Expr(Line);
public sealed record NameRef(int Line, string Name) : Expr(Line);
public sealed record ListExpr(int Line, IReadOnlyList<Expr> Items) : Expr(Line);
public sealed record TupleExpr(int Line, IReadOnlyList<Expr> Items) : Expr(Line);
public sealed record DictExpr(int Line, IReadOnlyList<(Expr Key, Expr Value)> Items) : Expr(Line);
public sealed record GetAttr(int Line, Expr Target, string Attribute) : Expr(Line);
public sealed record GetItem(int Line, Expr Target, Expr Index) : Expr(Line);
public sealed record SliceExpr(int Line, Expr? Start, Expr? Stop, Expr? Step) : Expr(Line);
public sealed record CallExpr(int Line, Expr Callee, IReadOnlyList<Expr> Args, IReadOnlyList<(string Name, Expr Value)> Kwargs) : Expr(Line);
public sealed record FilterExpr(int Line, Expr? Target, string Name, IReadOnlyList<Expr> Args, IReadOnlyList<(string Name, Expr Value)> Kwargs) : Expr(Line);
public sealed record TestExpr(int Line, Expr Target, string Name, IReadOnlyList<Expr> Args, bool Negated) : Expr(Line);
public sealed record UnaryExpr(int Line, string Op, Expr Operand) : Expr(Line);
public sealed record BinaryExpr(int Line, string Op, Expr Left, Expr Right) : Expr(Line);
public sealed record CompareExpr(int Line, Expr First, IReadOnlyList<(string Op, Expr Right)> Rest) : Expr(Line);
public sealed record CondExpr(int Line, Expr Test, Expr Then, Expr? Else) : Expr(Line);

public abstract record Stmt(int Line) : Node(Line);
public sealed record TextStmt(int Line, string Text) : Stmt(Line);
public sealed record OutputStmt(int Line, Expr Value) : Stmt(Line);
public sealed record IfStmt(int Line, IReadOnlyList<(Expr Test, IReadOnlyList<Stmt> Body)> Branches, IReadOnlyList<Stmt>? Else) : Stmt(Line);
public sealed record ForStmt(int Line, Expr Target, Expr Iter, Expr? Filter, IReadOnlyList<Stmt> Body, IReadOnlyList<Stmt>? Else, bool Recursive) : Stmt(Line);
public sealed record SetStmt(int Line, Expr Target, Expr Value) : Stmt(Line);
public sealed record SetBlockStmt(int Line, Expr Target, IReadOnlyList<Stmt> Body, IReadOnlyList<FilterExpr> Filters) : Stmt(Line);
public sealed record MacroStmt(int Line, string Name, IReadOnlyList<(string Name, Expr? Default)> Params, IReadOnlyList<Stmt> Body) : Stmt(Line);
public sealed record CallBlockStmt(int Line, CallExpr Call, IReadOnlyList<(string Name, Expr? Default)> Params, IReadOnlyList<Stmt> Body) : Stmt(Line);
public sealed record FilterBlockStmt(int Line, IReadOnlyList<FilterExpr> Filters, IReadOnlyList<Stmt> Body) : Stmt(Line);
public sealed record WithStmt(int Line, IReadOnlyList<(Expr Target, Expr Value)> Assignments, IReadOnlyList<Stmt> Body) : Stmt(Line);
/// <summary>transformers' {% generation %} block: renders its body (the span marks assistant output).</summary>
public sealed record GenerationStmt(int Line, IReadOnlyList<Stmt> Body) : Stmt(Line);
public sealed record BreakStmt(int Line) : Stmt(Line);
public sealed record ContinueStmt(int Line) : Stmt(Line);
