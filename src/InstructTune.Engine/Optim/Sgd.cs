// SGD with momentum as torch.optim.SGD (dampening, optional Nesterov, L2 weight decay added to the gradient):
//   d = g + wd·p;  buf = d (first step) or buf·μ + (1−dampening)·d;  d = nesterov ? d + μ·buf : buf;  p −= lr·d
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Optim;

public sealed class Sgd(IEnumerable<ParamGroup> groups, float lr, float momentum = 0f, float dampening = 0f, bool nesterov = false)
{
    private readonly Dictionary<Parameter, float[]> buffers = new(ReferenceEqualityComparer.Instance);

    public IReadOnlyList<ParamGroup> Groups { get; } = groups.ToList();
    public float LearningRate { get; set; } = lr;

    public Sgd(IEnumerable<Parameter> parameters, float lr, float momentum = 0f, float weightDecay = 0f)
        : this([new ParamGroup(parameters, weightDecay)], lr, momentum) { }

    public float[]? MomentumBuffer(Parameter p) => buffers.GetValueOrDefault(p);

    public void Step()
    {
        foreach (var g in Groups)
            foreach (var p in g.Parameters)
            {
                if (p.Frozen || p.Grad == null) continue;
                var ps = p.Span; var gs = p.Grad.Span;
                float lr = LearningRate * g.LrScale, wd = g.WeightDecay;
                bool first = !buffers.TryGetValue(p, out var buf);
                if (momentum != 0f && first) buffers[p] = buf = new float[p.Length];
                for (int i = 0; i < ps.Length; i++)
                {
                    float d = wd != 0f ? gs[i] + wd * ps[i] : gs[i];
                    if (momentum != 0f)
                    {
                        buf![i] = first ? d : buf![i] * momentum + (1f - dampening) * d;
                        d = nesterov ? d + momentum * buf[i] : buf[i];
                    }
                    ps[i] += -lr * d;
                }
            }
    }
}
