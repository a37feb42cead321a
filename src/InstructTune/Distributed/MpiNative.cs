// P/Invoke into Open MPI's libmpi.so.40 (Debian openmpi-bin / libopenmpi3). No MPI.NET: the few calls data
// parallelism needs are bound here by function pointer. Open MPI's predefined handles (MPI_COMM_WORLD,
// MPI_FLOAT, MPI_SUM, …) are not integers as in MPICH but the addresses of exported global objects
// (`ompi_mpi_comm_world`, `ompi_mpi_float`, `ompi_mpi_op_sum`), so they are looked up as exports; MPI_IN_PLACE
// is the constant (void*)1 and MPI_STATUS_IGNORE is NULL. The library is opened RTLD_GLOBAL first, as mpi4py
// does, because Open MPI's plug-ins (mca_*.so) resolve symbols of libmpi/libopen-pal from the global scope.
using System.Runtime.InteropServices;

namespace InstructTune.Distributed;

internal static unsafe class MpiNative
{
    public const string Library = "libmpi.so.40";
    public const int ThreadMultiple = 3;   // MPI_THREAD_MULTIPLE in Open MPI's mpi.h
    public const int Success = 0;
    public static readonly nint InPlace = 1;

    private static nint handle;
    public static nint CommWorld, Float, Double, OpSum, OpMax;

    public static delegate* unmanaged<int*, nint*, int, int*, int> InitThread;
    public static delegate* unmanaged<int*, int> Initialized;
    public static delegate* unmanaged<int*, int> Finalized;
    public static delegate* unmanaged<int> Finalize;
    public static delegate* unmanaged<nint, int*, int> CommRank;
    public static delegate* unmanaged<nint, int*, int> CommSize;
    public static delegate* unmanaged<nint, nint, int, nint, nint, nint, int> Allreduce;
    public static delegate* unmanaged<nint, int, nint, int, nint, int> Bcast;
    public static delegate* unmanaged<nint, int, nint, int, int, nint, int> Send;
    public static delegate* unmanaged<nint, int, nint, int, int, nint, nint, int> Recv;
    public static delegate* unmanaged<nint, int> Barrier;
    public static delegate* unmanaged<nint, int, int> Abort;

    [DllImport("libc", EntryPoint = "dlopen")] private static extern nint DlOpen(string file, int mode);
    [DllImport("libc", EntryPoint = "_exit")] public static extern void ExitNow(int code);

    /// <summary>Loads libmpi.so.40 and binds every entry point; a clear error when Open MPI is not installed.</summary>
    public static void Load()
    {
        if (handle != 0) return;
        const int RtldNow = 2, RtldGlobal = 0x100;
        if (DlOpen(Library, RtldNow | RtldGlobal) == 0 || !NativeLibrary.TryLoad(Library, out handle))
            throw new InstructTune.Common.InputException($"{Library} did not load: install Open MPI (apt-get install openmpi-bin libopenmpi-dev)");
        nint F(string name) => NativeLibrary.GetExport(handle, name);
        CommWorld = F("ompi_mpi_comm_world"); Float = F("ompi_mpi_float"); Double = F("ompi_mpi_double");
        OpSum = F("ompi_mpi_op_sum"); OpMax = F("ompi_mpi_op_max");
        InitThread = (delegate* unmanaged<int*, nint*, int, int*, int>)F("MPI_Init_thread");
        Initialized = (delegate* unmanaged<int*, int>)F("MPI_Initialized");
        Finalized = (delegate* unmanaged<int*, int>)F("MPI_Finalized");
        Finalize = (delegate* unmanaged<int>)F("MPI_Finalize");
        CommRank = (delegate* unmanaged<nint, int*, int>)F("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<nint, int*, int>)F("MPI_Comm_size");
        Allreduce = (delegate* unmanaged<nint, nint, int, nint, nint, nint, int>)F("MPI_Allreduce");
        Bcast = (delegate* unmanaged<nint, int, nint, int, nint, int>)F("MPI_Bcast");
        Send = (delegate* unmanaged<nint, int, nint, int, int, nint, int>)F("MPI_Send");
        Recv = (delegate* unmanaged<nint, int, nint, int, int, nint, nint, int>)F("MPI_Recv");
        Barrier = (delegate* unmanaged<nint, int>)F("MPI_Barrier");
        Abort = (delegate* unmanaged<nint, int, int>)F("MPI_Abort");
    }
}
