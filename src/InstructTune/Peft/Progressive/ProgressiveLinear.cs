using InstructTune.Engine.Autograd;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Peft.Lora;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Peft.Progressive;

/// <summary>
/// Progressive adapters (training.method progressive; issue 17): progressive neural networks (Rusu et al. 2016) in LoRA
/// form. A frozen base Linear W and one LoRA column per stage; column c has its own A_c (r, in), B_c (out, r) and one
/// learned lateral scalar u_{c,i} per earlier column i &lt; c. With column c selected:
/// <code>
///   h_i(x) = s · B_i A_i x                                  (…, out)   s = lora.alpha / lora.rank
///   y      = W x + h_c(x) + Σ_{i&lt;c} u_{c,i} · h_i(x)       (…, out)
/// </code>
/// Earlier columns feed the new one only through their outputs (u_{c,i} trains, h_i is a constant: its A_i, B_i are
/// frozen once stage i ends), so column c's output depends on nothing a later stage trains: selecting it after any
/// later stage gives bit-identical outputs. Initialisation: A_c ~ U(±1/√in) (PEFT's), B_c = 0, u_{c,i} = 0, so a fresh
/// column computes W x exactly. Column c as a whole is a LoRA of rank c·r (A' = [A_c; A_1; …], B' = [B_c, u_{c,1}B_1, …]),
/// which is how it is exported (<see cref="ProgressiveAdapterIO"/>).
/// </summary>
public sealed class ProgressiveLinear : Module, IUnaryModule, IAdapterLayer
{
    public Linear Base { get; }
    public IReadOnlyList<Column> Columns { get; }
    public float Scale { get; }
    public int InFeatures => Base.InFeatures;
    public int OutFeatures => Base.OutFeatures;
    public int Rank { get; }
    /// <summary>The selected column (0-based).</summary>
    public int Active { get; set; }
    public bool Enabled { get; set; } = true;

    /// <summary>One column: its LoRA pair and its lateral scalars (one (1, 1) weight per earlier column).</summary>
    public sealed class Column : Module
    {
        public Linear A { get; }
        public Linear B { get; }
        public IReadOnlyList<Parameter> Lateral { get; }

        public Column(int index, int inFeatures, int outFeatures, int rank, Rng initRng)
        {
            A = RegisterModule("lora_A", new Linear(inFeatures, rank));
            B = RegisterModule("lora_B", new Linear(rank, outFeatures));
            float bound = 1f / MathF.Sqrt(inFeatures);
            initRng.Uniform(A.Weight.Span, -bound, bound);
            B.Weight.Span.Clear();
            Lateral = Enumerable.Range(0, index).Select(i => RegisterParameter($"lateral_{i}", new Parameter(1, 1))).ToList();
        }

        public IEnumerable<Parameter> Trainables => new[] { A.Weight, B.Weight }.Concat(Lateral);
    }

    public ProgressiveLinear(Linear baseLayer, LoraConfig config, int columns, Rng initRng)
    {
        Base = baseLayer;
        baseLayer.Weight.Frozen = true;
        if (baseLayer.Bias != null) baseLayer.Bias.Frozen = true;
        RegisterParameter("weight", baseLayer.Weight);
        if (baseLayer.Bias != null) RegisterParameter("bias", baseLayer.Bias); else RegisterAbsentParameter("bias");
        Scale = config.Scale;
        Rank = config.Rank;
        Columns = Enumerable.Range(0, columns).Select(c => RegisterModule($"column_{c}", new Column(c, InFeatures, OutFeatures, Rank, initRng))).ToList();
    }

    private Tensor H(Tensor x, int i) => Ops.Scale(Ops.Linear(Ops.Linear(x, Columns[i].A.Weight), Columns[i].B.Weight), Scale);   // (…, r) then (…, out)

    public Tensor Forward(Tensor x)
    {
        var y = Base.Forward(x);                                            // (…, out)
        if (!Enabled) return y;
        var column = Columns[Active];
        y = Ops.Add(y, H(x, Active));
        for (int i = 0; i < Active; i++)
        {
            // u · h_i as a (N·out, 1) × (1, 1) product, so the scalar gets its gradient Σ h_i ⊙ dy.
            var h = H(x, i);
            var flat = Ops.Reshape(h, h.Length, 1);                         // (N·out, 1)
            y = Ops.Add(y, Ops.Reshape(Ops.Linear(flat, column.Lateral[i]), h.Shape));
        }
        return y;
    }

    /// <summary>Selects column <paramref name="active"/> and makes it alone trainable (earlier and later columns frozen).</summary>
    public void Select(int active, bool train)
    {
        Active = active;
        for (int c = 0; c < Columns.Count; c++)
            foreach (var p in Columns[c].Trainables) p.Frozen = !(train && c == active);
    }
}
