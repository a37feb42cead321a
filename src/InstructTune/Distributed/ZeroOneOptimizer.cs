using InstructTune.Engine.Optim;
using InstructTune.Engine.Tensors;

namespace InstructTune.Distributed;

/// <summary>
/// ZeRO stage 1 (Rajbhandari et al., 2020; as torch's ZeroRedundancyOptimizer, by whole parameters): each
/// trainable parameter is owned by one rank, assigned largest first to the least-loaded rank, so every rank
/// holds the AdamW moments (8 bytes per value) of about 1/N of the values instead of all. After the gradients
/// are summed on every rank, each rank updates only what it owns and broadcasts it; all ranks end the step with
/// the same weights as a one-process AdamW step (the update is element-wise, so who computes it changes no bit).
/// For checkpoints the moments are gathered on rank 0, written, and dropped again.
/// </summary>
public sealed class ZeroOneOptimizer
{
    private readonly AdamW _inner;
    private readonly ICommunicator _comm;
    private readonly IReadOnlyList<Parameter> _parameters;
    private readonly Dictionary<Parameter, int> _owner = new(ReferenceEqualityComparer.Instance);

    public ZeroOneOptimizer(AdamW inner, IReadOnlyList<Parameter> parameters, ICommunicator comm)
    {
        _inner = inner; _comm = comm; _parameters = parameters;
        var load = new long[comm.Size];
        foreach (var p in parameters.OrderByDescending(p => p.Length))   // stable: ties keep model order
        {
            int r = Array.IndexOf(load, load.Min());
            _owner[p] = r;
            load[r] += p.Length;
        }
        OwnedValues = load[comm.Rank];
        TotalValues = load.Sum();
        inner.Owns = p => Owner(p) == comm.Rank;
    }

    public long OwnedValues { get; }
    public long TotalValues { get; }
    public int Owner(Parameter p) => _owner.TryGetValue(p, out var r) ? r : 0;

    /// <summary>Updates this rank's parameters, then every rank receives each parameter from its owner.</summary>
    public void Step()
    {
        _inner.Step();
        foreach (var p in _parameters) _comm.Broadcast(p.Span, Owner(p));
    }

    /// <summary>Collective: rank 0 receives the moments and step counts of the parameters other ranks own.</summary>
    public void GatherStateOnRoot()
    {
        foreach (var p in _parameters)
        {
            int owner = Owner(p);
            if (owner == 0 || (_comm.Rank != 0 && _comm.Rank != owner)) continue;
            if (_comm.Rank == owner)
            {
                var s = _inner.GetState(p);
                _comm.Send(s.M, 0); _comm.Send(s.V, 0); _comm.Send([s.Step], 0);   // step counts < 2^24 are exact floats
            }
            else
            {
                var s = _inner.GetState(p);
                var step = new float[1];
                _comm.Receive(s.M, owner); _comm.Receive(s.V, owner); _comm.Receive(step, owner);
                s.Step = (int)step[0];
            }
        }
    }

    /// <summary>Drops the moments this rank holds but does not own (after a checkpoint write or a restore).</summary>
    public void DropForeignState()
    {
        foreach (var p in _parameters) if (Owner(p) != _comm.Rank) _inner.DropState(p);
    }
}
