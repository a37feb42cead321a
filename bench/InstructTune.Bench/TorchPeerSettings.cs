// Environment for the PyTorch peers (bench/peers/*.py): PyTorch's best setting on this machine, so that a ratio
// against it is not flattered by a handicapped peer.
using System.Diagnostics;

namespace InstructTune.Bench;

public static class TorchPeerSettings
{
    /// <summary>OpenMP threads that sleep when idle instead of spinning against OpenBLAS's own pool on the two
    /// cores: measured on decode S, prefill 7.7–9.3k → 9.5–13.4k tok/s and decode about 1.5× faster.</summary>
    public static ProcessStartInfo Apply(ProcessStartInfo psi)
    {
        psi.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        return psi;
    }
}
