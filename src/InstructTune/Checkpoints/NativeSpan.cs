// Spans over native (memory-mapped) memory without unsafe blocks in this project.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace InstructTune.Checkpoints;

internal static class NativeSpan
{
    /// <summary>A span of <paramref name="count"/> elements of T starting at address <paramref name="p"/>.
    /// The caller guarantees the range is mapped and outlives the span (the owning file stays open).</summary>
    public static Span<T> Create<T>(IntPtr p, int count) where T : struct =>
        MemoryMarshal.CreateSpan(ref Unsafe.As<byte, T>(ref Unsafe.AddByteOffset(ref Unsafe.NullRef<byte>(), (nuint)(nint)p)), count);
}
