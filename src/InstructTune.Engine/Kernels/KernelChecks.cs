// Argument checks shared by the kernels: a too-short buffer is an ArgumentException naming the kernel,
// the buffer and both sizes, never an IndexOutOfRange from deep inside a loop.
namespace InstructTune.Engine.Kernels;

internal static class KernelChecks
{
    public static void Len(string kernel, string name, int actual, long needed)
    {
        if (actual < needed)
            throw new ArgumentException($"{kernel}: buffer '{name}' has {actual} elements, needs {needed}");
    }
}
