namespace InstructTune.Templates.Jinja;

/// <summary>
/// Recursive-descent parser for the Jinja subset chat templates use, with jinja2's operator precedence:
/// ternary &lt; or &lt; and &lt; not &lt; comparisons/in &lt; + - &lt; ~ &lt; * / // % &lt; ** &lt; unary - + &lt;
/// postfix (. [] ()) and filters/tests (| and is), which bind tightest.
/// </summary>
public sealed class JinjaParser
{
    private const int MaxNesting = 200;
    private readonly List<Token> _tokens;
    private int _pos;
    private int _depth;
    private bool _inLoop;
    private readonly Stack<Token> _openBlocks = new();

    private JinjaParser(List<Token> tokens) { _tokens = tokens; }

    public static IReadOnlyList<Stmt> Parse(string source)
    {
        var parser = new JinjaParser(JinjaLexer.Tokenize(source));
        var body = parser.ParseStatements([]);
        var t = parser.Peek;
        if (t.Kind != TokenKind.Eof) throw Error(t, $"unexpected '{t.Value}'");
        return body;
    }

    private Token Peek => _tokens[_pos];
    private Token PeekAt(int k) => _tokens[Math.Min(_pos + k, _tokens.Count - 1)];
    private Token Next() => _tokens[_pos++];

    private static TemplateSyntaxException Error(Token t, string message) => new(message, t.Line, t.Column);

    private bool IsOp(string op) => Peek.Kind == TokenKind.Operator && Peek.Value == op;
    private bool IsName(string name) => Peek.Kind == TokenKind.Name && Peek.Value == name;

    private Token Expect(TokenKind kind, string? value = null)
    {
        var t = Peek;
        if (t.Kind != kind || (value != null && t.Value != value))
        {
            string want = value ?? kind switch
            {
                TokenKind.BlockEnd => "%}", TokenKind.VariableEnd => "}}", TokenKind.Name => "a name", _ => kind.ToString(),
            };
            string got = t.Kind == TokenKind.Eof ? "end of template" : $"'{t.Value}'";
            throw Error(t, $"expected {want}, got {got}");
        }
        return Next();
    }

    // ---- statements ----

    /// <summary>Parses until a block tag whose keyword is in <paramref name="endKeywords"/> (left unconsumed) or EOF.</summary>
    private List<Stmt> ParseStatements(string[] endKeywords)
    {
        if (++_depth > MaxNesting) throw Error(Peek, "template nested too deeply");
        var body = new List<Stmt>();
        while (true)
        {
            var t = Peek;
            if (t.Kind == TokenKind.Eof)
            {
                if (endKeywords.Length > 0)
                {
                    // Point at the block that was never closed: that is where the fix goes.
                    var open = _openBlocks.Count > 0 ? _openBlocks.Peek() : t;
                    throw Error(open, $"unexpected end of template: '{open.Value}' block is never closed (expected '{string.Join("' or '", endKeywords)}')");
                }
                break;
            }
            if (t.Kind == TokenKind.Text) { Next(); body.Add(new TextStmt(t.Line, t.Value)); continue; }
            if (t.Kind == TokenKind.VariableBegin)
            {
                Next();
                var e = ParseTuple(true);
                Expect(TokenKind.VariableEnd);
                body.Add(new OutputStmt(t.Line, e));
                continue;
            }
            Expect(TokenKind.BlockBegin);
            var kw = Peek;
            if (kw.Kind == TokenKind.Name && Array.IndexOf(endKeywords, kw.Value) >= 0) break;
            body.Add(ParseStatement());
        }
        _depth--;
        return body;
    }

    /// <summary>After ParseStatements stopped at an end keyword: consume it and the tag end.</summary>
    private string EndTag()
    {
        var kw = Expect(TokenKind.Name).Value;
        return kw;
    }

    private Stmt ParseStatement()
    {
        var kw = Peek;
        if (kw.Kind != TokenKind.Name) throw Error(kw, $"expected a statement keyword, got '{kw.Value}'");
        Next();
        _openBlocks.Push(kw);
        try { return ParseStatementBody(kw); }
        finally { _openBlocks.Pop(); }
    }

    private Stmt ParseStatementBody(Token kw)
    {
        switch (kw.Value)
        {
            case "if": return ParseIf(kw);
            case "for": return ParseFor(kw);
            case "set": return ParseSet(kw);
            case "macro": return ParseMacro(kw);
            case "call": return ParseCallBlock(kw);
            case "filter": return ParseFilterBlock(kw);
            case "with": return ParseWith(kw);
            case "generation":
            {
                Expect(TokenKind.BlockEnd);
                var body = ParseStatements(["endgeneration"]);
                EndTag(); Expect(TokenKind.BlockEnd);
                return new GenerationStmt(kw.Line, body);
            }
            case "break" or "continue":
                if (!_inLoop) throw Error(kw, $"'{kw.Value}' outside of a for loop");
                Expect(TokenKind.BlockEnd);
                return kw.Value == "break" ? new BreakStmt(kw.Line) : new ContinueStmt(kw.Line);
            case "include" or "import" or "from" or "extends" or "block":
                throw Error(kw, $"'{kw.Value}' is not supported in chat templates (no template loader in the sandbox)");
            default:
                throw Error(kw, $"unknown tag '{kw.Value}'");
        }
    }

    private Stmt ParseIf(Token kw)
    {
        var branches = new List<(Expr, IReadOnlyList<Stmt>)>();
        List<Stmt>? elseBody = null;
        var test = ParseTuple(true);
        Expect(TokenKind.BlockEnd);
        while (true)
        {
            var body = ParseStatements(["elif", "else", "endif"]);
            branches.Add((test, body));
            var end = EndTag();
            if (end == "elif") { test = ParseTuple(true); Expect(TokenKind.BlockEnd); continue; }
            if (end == "else")
            {
                Expect(TokenKind.BlockEnd);
                elseBody = ParseStatements(["endif"]);
                EndTag();
            }
            Expect(TokenKind.BlockEnd);
            return new IfStmt(kw.Line, branches, elseBody);
        }
    }

    private Stmt ParseFor(Token kw)
    {
        var target = ParseAssignTarget(allowAttr: false);
        Expect(TokenKind.Name, "in");
        var iter = ParseTuple(withCondExpr: false);
        Expr? filter = null;
        if (IsName("if")) { Next(); filter = ParseExpression(true); }
        bool recursive = false;
        if (IsName("recursive")) { Next(); recursive = true; }
        Expect(TokenKind.BlockEnd);
        bool wasInLoop = _inLoop;
        _inLoop = true;
        var body = ParseStatements(["endfor", "else"]);
        _inLoop = wasInLoop;
        List<Stmt>? elseBody = null;
        if (EndTag() == "else")
        {
            Expect(TokenKind.BlockEnd);
            elseBody = ParseStatements(["endfor"]);
            EndTag();
        }
        Expect(TokenKind.BlockEnd);
        return new ForStmt(kw.Line, target, iter, filter, body, elseBody, recursive);
    }

    private Stmt ParseSet(Token kw)
    {
        var target = ParseAssignTarget(allowAttr: true);
        if (IsOp("="))
        {
            Next();
            var value = ParseTuple(true);
            Expect(TokenKind.BlockEnd);
            return new SetStmt(kw.Line, target, value);
        }
        var filters = ParseFilterChain();
        Expect(TokenKind.BlockEnd);
        var body = ParseStatements(["endset"]);
        EndTag(); Expect(TokenKind.BlockEnd);
        return new SetBlockStmt(kw.Line, target, body, filters);
    }

    private List<FilterExpr> ParseFilterChain()
    {
        var filters = new List<FilterExpr>();
        while (IsOp("|")) { Next(); filters.Add((FilterExpr)ParseFilter(null)); }
        return filters;
    }

    private Stmt ParseMacro(Token kw)
    {
        var name = Expect(TokenKind.Name).Value;
        var ps = ParseParams();
        Expect(TokenKind.BlockEnd);
        bool wasInLoop = _inLoop; _inLoop = false;
        var body = ParseStatements(["endmacro"]);
        _inLoop = wasInLoop;
        EndTag(); Expect(TokenKind.BlockEnd);
        return new MacroStmt(kw.Line, name, ps, body);
    }

    private List<(string, Expr?)> ParseParams()
    {
        var ps = new List<(string, Expr?)>();
        Expect(TokenKind.Operator, "(");
        while (!IsOp(")"))
        {
            if (ps.Count > 0) Expect(TokenKind.Operator, ",");
            if (IsOp(")")) break;
            var name = Expect(TokenKind.Name).Value;
            Expr? def = null;
            if (IsOp("=")) { Next(); def = ParseExpression(true); }
            ps.Add((name, def));
        }
        Next();
        return ps;
    }

    private Stmt ParseCallBlock(Token kw)
    {
        var ps = IsOp("(") ? ParseParams() : [];
        var call = ParseExpression(true) as CallExpr ?? throw Error(kw, "expected a macro call after 'call'");
        Expect(TokenKind.BlockEnd);
        var body = ParseStatements(["endcall"]);
        EndTag(); Expect(TokenKind.BlockEnd);
        return new CallBlockStmt(kw.Line, call, ps, body);
    }

    private Stmt ParseFilterBlock(Token kw)
    {
        var filters = new List<FilterExpr> { (FilterExpr)ParseFilter(null) };
        filters.AddRange(ParseFilterChain());
        Expect(TokenKind.BlockEnd);
        var body = ParseStatements(["endfilter"]);
        EndTag(); Expect(TokenKind.BlockEnd);
        return new FilterBlockStmt(kw.Line, filters, body);
    }

    private Stmt ParseWith(Token kw)
    {
        var assigns = new List<(Expr, Expr)>();
        while (!(Peek.Kind == TokenKind.BlockEnd))
        {
            if (assigns.Count > 0) Expect(TokenKind.Operator, ",");
            var target = ParseAssignTarget(allowAttr: false);
            Expect(TokenKind.Operator, "=");
            assigns.Add((target, ParseExpression(true)));
        }
        Expect(TokenKind.BlockEnd);
        var body = ParseStatements(["endwith"]);
        EndTag(); Expect(TokenKind.BlockEnd);
        return new WithStmt(kw.Line, assigns, body);
    }

    /// <summary>name, name.attr (set only), or a tuple of names (a, b) / a, b.</summary>
    private Expr ParseAssignTarget(bool allowAttr)
    {
        var first = Peek;
        var names = new List<Expr>();
        bool paren = IsOp("(");
        if (paren) Next();
        while (true)
        {
            var n = Expect(TokenKind.Name);
            Expr target = new NameRef(n.Line, n.Value);
            if (allowAttr && IsOp(".") && names.Count == 0)
            {
                Next();
                target = new GetAttr(n.Line, target, Expect(TokenKind.Name).Value);
                if (!paren) return target;
            }
            names.Add(target);
            if (!IsOp(",")) break;
            Next();
            if (Peek.Kind != TokenKind.Name) break;
        }
        if (paren) Expect(TokenKind.Operator, ")");
        return names.Count == 1 && !paren ? names[0] : new TupleExpr(first.Line, names);
    }

    // ---- expressions ----

    /// <summary>An expression, or a bare tuple "a, b" (as jinja2's parse_tuple).</summary>
    private Expr ParseTuple(bool withCondExpr)
    {
        var line = Peek.Line;
        var first = ParseExpression(withCondExpr);
        if (!IsOp(",")) return first;
        var items = new List<Expr> { first };
        while (IsOp(","))
        {
            Next();
            if (Peek.Kind is TokenKind.BlockEnd or TokenKind.VariableEnd || IsOp(")") || IsName("in") || IsName("if")) break;
            items.Add(ParseExpression(withCondExpr));
        }
        return new TupleExpr(line, items);
    }

    private Expr ParseExpression(bool withCondExpr)
    {
        if (++_depth > MaxNesting) throw Error(Peek, "expression nested too deeply");
        var e = withCondExpr ? ParseCondExpr() : ParseOr();
        _depth--;
        return e;
    }

    private Expr ParseCondExpr()
    {
        var expr = ParseOr();
        while (IsName("if"))
        {
            var line = Next().Line;
            var test = ParseOr();
            Expr? otherwise = null;
            if (IsName("else")) { Next(); otherwise = ParseCondExpr(); }
            expr = new CondExpr(line, test, expr, otherwise);
        }
        return expr;
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (IsName("or")) { var l = Next().Line; left = new BinaryExpr(l, "or", left, ParseAnd()); }
        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (IsName("and")) { var l = Next().Line; left = new BinaryExpr(l, "and", left, ParseNot()); }
        return left;
    }

    private Expr ParseNot()
    {
        if (IsName("not")) { var l = Next().Line; return new UnaryExpr(l, "not", ParseNot()); }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        var line = Peek.Line;
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Peek.Kind == TokenKind.Operator && Peek.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                var op = Next().Value;
                rest.Add((op, ParseMath1()));
            }
            else if (IsName("in")) { Next(); rest.Add(("in", ParseMath1())); }
            else if (IsName("not") && PeekAt(1).Kind == TokenKind.Name && PeekAt(1).Value == "in")
            {
                Next(); Next();
                rest.Add(("notin", ParseMath1()));
            }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(line, first, rest);
    }

    private Expr ParseMath1()
    {
        var left = ParseConcat();
        while (Peek.Kind == TokenKind.Operator && Peek.Value is "+" or "-")
        {
            var t = Next();
            left = new BinaryExpr(t.Line, t.Value, left, ParseConcat());
        }
        return left;
    }

    private Expr ParseConcat()
    {
        var left = ParseMath2();
        while (IsOp("~")) { var t = Next(); left = new BinaryExpr(t.Line, "~", left, ParseMath2()); }
        return left;
    }

    private Expr ParseMath2()
    {
        var left = ParsePow();
        while (Peek.Kind == TokenKind.Operator && Peek.Value is "*" or "/" or "//" or "%")
        {
            var t = Next();
            left = new BinaryExpr(t.Line, t.Value, left, ParsePow());
        }
        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary(true);
        while (IsOp("**")) { var t = Next(); left = new BinaryExpr(t.Line, "**", left, ParseUnary(true)); }
        return left;
    }

    private Expr ParseUnary(bool withFilter)
    {
        Expr node;
        if (IsOp("-") || IsOp("+"))
        {
            var t = Next();
            if (++_depth > MaxNesting) throw Error(t, "expression nested too deeply");
            node = new UnaryExpr(t.Line, t.Value, ParseUnary(false));
            _depth--;
        }
        else node = ParsePostfix(ParsePrimary());
        return withFilter ? ParseFilterExpr(node) : node;
    }

    private Expr ParsePrimary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokenKind.Name:
                return t.Value switch
                {
                    "true" or "True" => new Literal(t.Line, true),
                    "false" or "False" => new Literal(t.Line, false),
                    "none" or "None" => new Literal(t.Line, null),
                    _ => new NameRef(t.Line, t.Value),
                };
            case TokenKind.String:
            {
                var s = (string)t.Literal!;
                while (Peek.Kind == TokenKind.String) s += (string)Next().Literal!; // adjacent literals concatenate
                return new Literal(t.Line, s);
            }
            case TokenKind.Integer or TokenKind.Float:
                return new Literal(t.Line, t.Literal);
            case TokenKind.Operator when t.Value == "(":
            {
                if (IsOp(")")) { Next(); return new TupleExpr(t.Line, []); }
                var first = ParseExpression(true);
                if (IsOp(")")) { Next(); return first; }
                var items = new List<Expr> { first };
                while (IsOp(","))
                {
                    Next();
                    if (IsOp(")")) break;
                    items.Add(ParseExpression(true));
                }
                Expect(TokenKind.Operator, ")");
                return new TupleExpr(t.Line, items);
            }
            case TokenKind.Operator when t.Value == "[":
            {
                var items = new List<Expr>();
                while (!IsOp("]"))
                {
                    if (items.Count > 0) Expect(TokenKind.Operator, ",");
                    if (IsOp("]")) break;
                    items.Add(ParseExpression(true));
                }
                Next();
                return new ListExpr(t.Line, items);
            }
            case TokenKind.Operator when t.Value == "{":
            {
                var items = new List<(Expr, Expr)>();
                while (!IsOp("}"))
                {
                    if (items.Count > 0) Expect(TokenKind.Operator, ",");
                    if (IsOp("}")) break;
                    var k = ParseExpression(true);
                    Expect(TokenKind.Operator, ":");
                    items.Add((k, ParseExpression(true)));
                }
                Next();
                return new DictExpr(t.Line, items);
            }
            default:
                throw Error(t, t.Kind == TokenKind.Eof || t.Kind is TokenKind.BlockEnd or TokenKind.VariableEnd
                    ? "unexpected end of expression" : $"unexpected '{t.Value}'");
        }
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            if (IsOp("."))
            {
                var t = Next();
                var n = Next();
                if (n.Kind == TokenKind.Name) node = new GetAttr(t.Line, node, n.Value);
                else if (n.Kind == TokenKind.Integer) node = new GetItem(t.Line, node, new Literal(n.Line, n.Literal));
                else throw Error(n, "expected an attribute name after '.'");
            }
            else if (IsOp("["))
            {
                var t = Next();
                var index = ParseSubscript();
                if (IsOp(","))
                {
                    var items = new List<Expr> { index };
                    while (IsOp(",")) { Next(); if (IsOp("]")) break; items.Add(ParseSubscript()); }
                    index = new TupleExpr(t.Line, items);
                }
                Expect(TokenKind.Operator, "]");
                node = new GetItem(t.Line, node, index);
            }
            else if (IsOp("("))
            {
                var t = Peek;
                var (args, kwargs) = ParseCallArgs();
                node = new CallExpr(t.Line, node, args, kwargs);
            }
            else return node;
        }
    }

    private Expr ParseSubscript()
    {
        var line = Peek.Line;
        Expr? start = null, stop = null, step = null;
        if (!IsOp(":"))
        {
            start = ParseExpression(true);
            if (!IsOp(":")) return start;
        }
        Next();
        if (!IsOp("]") && !IsOp(",") && !IsOp(":")) stop = ParseExpression(true);
        if (IsOp(":"))
        {
            Next();
            if (!IsOp("]") && !IsOp(",")) step = ParseExpression(true);
        }
        return new SliceExpr(line, start, stop, step);
    }

    private (List<Expr>, List<(string, Expr)>) ParseCallArgs()
    {
        Expect(TokenKind.Operator, "(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!IsOp(")"))
        {
            if (args.Count + kwargs.Count > 0) Expect(TokenKind.Operator, ",");
            if (IsOp(")")) break;
            if (Peek.Kind == TokenKind.Name && PeekAt(1).Kind == TokenKind.Operator && PeekAt(1).Value == "=")
            {
                var name = Next().Value;
                Next();
                kwargs.Add((name, ParseExpression(true)));
            }
            else
            {
                if (kwargs.Count > 0) throw Error(Peek, "positional argument after keyword argument");
                args.Add(ParseExpression(true));
            }
        }
        Next();
        return (args, kwargs);
    }

    private Expr ParseFilterExpr(Expr node)
    {
        // Each filter, test or call wraps the node once more: a chain of 100,000 filters is an expression nested
        // 100,000 deep, which the interpreter would evaluate recursively. Bound it like any other nesting.
        for (int links = 0; ; links++)
        {
            if (_depth + links > MaxNesting) throw Error(Peek, $"expression nested too deeply (more than {MaxNesting} filters, tests or calls in a chain)");
            if (IsOp("|")) { Next(); node = ParseFilter(node); }
            else if (IsName("is")) { Next(); node = ParseTest(node); }
            else if (IsOp("(")) node = ParsePostfix(node);
            else return node;
        }
    }

    private Expr ParseFilter(Expr? target)
    {
        var t = Expect(TokenKind.Name);
        var name = t.Value;
        while (IsOp(".")) { Next(); name += "." + Expect(TokenKind.Name).Value; }
        if (!JinjaFilters.Exists(name)) throw Error(t, $"no filter named '{name}'"); // jinja2 checks at compile time too
        List<Expr> args = [];
        List<(string, Expr)> kwargs = [];
        if (IsOp("(")) (args, kwargs) = ParseCallArgs();
        return new FilterExpr(t.Line, target, name, args, kwargs);
    }

    private Expr ParseTest(Expr target)
    {
        bool negated = false;
        if (IsName("not")) { Next(); negated = true; }
        var t = Expect(TokenKind.Name);
        var name = t.Value;
        while (IsOp(".")) { Next(); name += "." + Expect(TokenKind.Name).Value; }
        if (!JinjaTests.Exists(name)) throw Error(t, $"no test named '{name}'");
        List<Expr> args = [];
        if (IsOp("("))
        {
            var (a, kw) = ParseCallArgs();
            if (kw.Count > 0) throw Error(t, "keyword arguments are not supported in tests");
            args = a;
        }
        else if (Peek.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float
                 || IsOp("[") || IsOp("{"))
        {
            // jinja2: a test takes one bare argument unless the next word is an operator keyword.
            if (!(Peek.Kind == TokenKind.Name && Peek.Value is "else" or "or" or "and" or "if" or "in" or "not" or "is"))
                args = [ParsePostfix(ParsePrimary())];
        }
        return new TestExpr(t.Line, target, name, args, negated);
    }
}
