// oneDNN binding (libdnnl.so.2, the 2.x C API; Debian's libdnnl2 ships 2.6): a bf16 × bf16 → float32 matmul
// primitive, loaded through NativeLibrary so a missing library is a clean "not available". Only the handful of
// entry points the matmul needs are bound, through unmanaged function pointers (no marshalling stubs).
// Descriptors (dnnl_memory_desc_t, dnnl_matmul_desc_t) are plain C structs the library fills in and reads back;
// they are kept in native buffers larger than their 2.x sizes, so no struct layout is copied into this file.
// Primitives are created once per (layout, shape, leading dimensions, alpha, beta) and cached: creating one costs
// far more than running a small one.
using System.Runtime.InteropServices;

namespace InstructTune.Engine.Native;

/// <summary>oneDNN's matmul primitive for C[M,N] = alpha·op(A)·op(B) + beta·C with bf16 A and B and float32 C.</summary>
public static unsafe class OneDnn
{
    // dnnl_types.h (2.x): dnnl_bf16 = 2, dnnl_f32 = 3; dnnl_cpu = 1; dnnl_stream_in_order = 1;
    // DNNL_ARG_SRC = 1, DNNL_ARG_DST = 17, DNNL_ARG_WEIGHTS = 33; dnnl_query_impl_info_str = 8.
    private const int Bf16 = 2, EngineCpu = 1, StreamInOrder = 1, ArgSrc = 1, ArgDst = 17, ArgWeights = 33, QueryImplInfo = 8;
    private const int F32 = 3;
    // sizeof(dnnl_memory_desc_t) is about 1 KiB in 2.x and dnnl_matmul_desc_t holds four of them: these
    // buffers leave room for both without copying the layout.
    private const int MemoryDescBytes = 4096, OpDescBytes = 32768;

    private static readonly delegate* unmanaged[Cdecl]<nint*, int, nuint, int> EngineCreate;
    private static readonly delegate* unmanaged[Cdecl]<nint*, nint, uint, int> StreamCreate;
    private static readonly delegate* unmanaged[Cdecl]<nint, int> StreamWait;
    private static readonly delegate* unmanaged[Cdecl]<void*, int, long*, int, long*, int> MemoryDescInitByStrides;
    private static readonly delegate* unmanaged[Cdecl]<void*, void*, void*, void*, void*, int> MatmulDescInit;
    private static readonly delegate* unmanaged[Cdecl]<nint*, int> AttrCreate;
    private static readonly delegate* unmanaged[Cdecl]<nint, int> AttrDestroy;
    private static readonly delegate* unmanaged[Cdecl]<nint, long, int, float*, int> AttrSetOutputScales;
    private static readonly delegate* unmanaged[Cdecl]<nint, nint, int> AttrSetPostOps;
    private static readonly delegate* unmanaged[Cdecl]<nint*, int> PostOpsCreate;
    private static readonly delegate* unmanaged[Cdecl]<nint, int> PostOpsDestroy;
    private static readonly delegate* unmanaged[Cdecl]<nint, float, int> PostOpsAppendSum;
    private static readonly delegate* unmanaged[Cdecl]<nint*, void*, nint, nint, nint, int> PrimitiveDescCreate;
    private static readonly delegate* unmanaged[Cdecl]<nint, int, int, void*, int> PrimitiveDescQuery;
    private static readonly delegate* unmanaged[Cdecl]<nint, int> PrimitiveDescDestroy;
    private static readonly delegate* unmanaged[Cdecl]<nint*, nint, int> PrimitiveCreate;
    private static readonly delegate* unmanaged[Cdecl]<nint, int> PrimitiveDestroy;
    private static readonly delegate* unmanaged[Cdecl]<nint, int> MemoryDestroy;
    private static readonly delegate* unmanaged[Cdecl]<nint*, void*, nint, void*, int> MemoryCreate;
    private static readonly delegate* unmanaged[Cdecl]<nint, void*, int> MemorySetDataHandle;
    private static readonly delegate* unmanaged[Cdecl]<nint, nint, int, ExecArg*, int> PrimitiveExecute;
    private static readonly delegate* unmanaged[Cdecl]<Version*> GetVersion;

    private static readonly nint Engine, Stream;
    private static readonly Dictionary<Key, Entry> Cache = new();
    private static readonly object Gate = new();

    [StructLayout(LayoutKind.Sequential)]
    private struct ExecArg { public int Arg; public nint Memory; }

    [StructLayout(LayoutKind.Sequential)]
    private struct Version { public int Major, Minor, Patch; public sbyte* Hash; public uint CpuRuntime, GpuRuntime; }

    private readonly record struct Key(bool TransA, bool TransB, int M, int N, int K, int Lda, int Ldb, int Ldc, float Alpha, float Beta);

    /// <summary>One cached primitive with its three memory objects (their data handles are set per call).</summary>
    private sealed class Entry
    {
        public nint Primitive, MemA, MemB, MemC;
        public string Impl = "";
    }

    /// <summary>True when libdnnl loaded, exports the matmul API and created a CPU engine and stream.</summary>
    public static bool IsAvailable { get; }

    /// <summary>The file that loaded (libdnnl.so.2 / .3), or null.</summary>
    public static string? LibraryName { get; }

    /// <summary>"major.minor.patch" of the loaded library, or null.</summary>
    public static string? VersionText { get; }

    /// <summary>Why the library is not available (null when it is).</summary>
    public static string? Unavailable { get; }

    static OneDnn()
    {
        // Debian's libdnnl2 runs its threads on GNU OpenMP. Spinning OpenMP workers would take the cores from the
        // engine's own worker team between oneDNN calls (PyTorch's peer measured up to 2.2× slower with spinning
        // threads here), so unless the user set it, OpenMP waits passively. libgomp reads the variable when it is
        // loaded, i.e. with libdnnl just below; .NET's Environment.SetEnvironmentVariable does not reach native code.
        SetNativeEnvIfUnset("OMP_WAIT_POLICY", "PASSIVE");
        foreach (var name in new[] { "libdnnl.so.3", "libdnnl.so.2", "libdnnl.so", "libdnnl.dylib", "dnnl.dll" })
        {
            if (!NativeLibrary.TryLoad(name, out var h)) continue;
            nint Get(string symbol) => NativeLibrary.TryGetExport(h, symbol, out var p) ? p : 0;
            // The 3.x API replaced *_desc_init by *_primitive_desc_create; only 2.x is bound here.
            if (Get("dnnl_matmul_desc_init") == 0) { Unavailable = $"{name} has no dnnl_matmul_desc_init (oneDNN 3.x API; 2.x is bound)"; continue; }
            EngineCreate = (delegate* unmanaged[Cdecl]<nint*, int, nuint, int>)Get("dnnl_engine_create");
            StreamCreate = (delegate* unmanaged[Cdecl]<nint*, nint, uint, int>)Get("dnnl_stream_create");
            StreamWait = (delegate* unmanaged[Cdecl]<nint, int>)Get("dnnl_stream_wait");
            MemoryDescInitByStrides = (delegate* unmanaged[Cdecl]<void*, int, long*, int, long*, int>)Get("dnnl_memory_desc_init_by_strides");
            MatmulDescInit = (delegate* unmanaged[Cdecl]<void*, void*, void*, void*, void*, int>)Get("dnnl_matmul_desc_init");
            AttrCreate = (delegate* unmanaged[Cdecl]<nint*, int>)Get("dnnl_primitive_attr_create");
            AttrDestroy = (delegate* unmanaged[Cdecl]<nint, int>)Get("dnnl_primitive_attr_destroy");
            AttrSetOutputScales = (delegate* unmanaged[Cdecl]<nint, long, int, float*, int>)Get("dnnl_primitive_attr_set_output_scales");
            AttrSetPostOps = (delegate* unmanaged[Cdecl]<nint, nint, int>)Get("dnnl_primitive_attr_set_post_ops");
            PostOpsCreate = (delegate* unmanaged[Cdecl]<nint*, int>)Get("dnnl_post_ops_create");
            PostOpsDestroy = (delegate* unmanaged[Cdecl]<nint, int>)Get("dnnl_post_ops_destroy");
            PostOpsAppendSum = (delegate* unmanaged[Cdecl]<nint, float, int>)Get("dnnl_post_ops_append_sum");
            PrimitiveDescCreate = (delegate* unmanaged[Cdecl]<nint*, void*, nint, nint, nint, int>)Get("dnnl_primitive_desc_create");
            PrimitiveDescQuery = (delegate* unmanaged[Cdecl]<nint, int, int, void*, int>)Get("dnnl_primitive_desc_query");
            PrimitiveDescDestroy = (delegate* unmanaged[Cdecl]<nint, int>)Get("dnnl_primitive_desc_destroy");
            PrimitiveCreate = (delegate* unmanaged[Cdecl]<nint*, nint, int>)Get("dnnl_primitive_create");
            PrimitiveDestroy = (delegate* unmanaged[Cdecl]<nint, int>)Get("dnnl_primitive_destroy");
            MemoryDestroy = (delegate* unmanaged[Cdecl]<nint, int>)Get("dnnl_memory_destroy");
            MemoryCreate = (delegate* unmanaged[Cdecl]<nint*, void*, nint, void*, int>)Get("dnnl_memory_create");
            MemorySetDataHandle = (delegate* unmanaged[Cdecl]<nint, void*, int>)Get("dnnl_memory_set_data_handle");
            PrimitiveExecute = (delegate* unmanaged[Cdecl]<nint, nint, int, ExecArg*, int>)Get("dnnl_primitive_execute");
            GetVersion = (delegate* unmanaged[Cdecl]<Version*>)Get("dnnl_version");
            if (EngineCreate == null || StreamCreate == null || StreamWait == null || MemoryDescInitByStrides == null ||
                AttrCreate == null || AttrDestroy == null || AttrSetOutputScales == null || AttrSetPostOps == null ||
                PostOpsCreate == null || PostOpsDestroy == null || PostOpsAppendSum == null || PrimitiveDescCreate == null ||
                PrimitiveDescQuery == null || PrimitiveDescDestroy == null || PrimitiveCreate == null || PrimitiveDestroy == null || MemoryDestroy == null || MemoryCreate == null ||
                MemorySetDataHandle == null || PrimitiveExecute == null)
            {
                Unavailable = $"{name} lacks part of the matmul C API";
                continue;
            }
            nint engine, stream;
            int st = EngineCreate(&engine, EngineCpu, 0);
            if (st != 0) { Unavailable = $"{name}: dnnl_engine_create(cpu) returned status {st}"; continue; }
            st = StreamCreate(&stream, engine, StreamInOrder);
            if (st != 0) { Unavailable = $"{name}: dnnl_stream_create returned status {st}"; continue; }
            Engine = engine; Stream = stream;
            LibraryName = name;
            if (GetVersion != null) { var v = GetVersion(); VersionText = $"{v->Major}.{v->Minor}.{v->Patch}"; }
            IsAvailable = true;
            Unavailable = null;
            return;
        }
        Unavailable ??= "libdnnl.so.2 not found (Debian: apt-get install libdnnl2)";
    }

    /// <summary>Sets a variable in the C runtime's environment (what native libraries read when they load) unless
    /// the user set it; a no-op off glibc.</summary>
    public static void SetNativeEnvIfUnset(string name, string value)
    {
        try
        {
            if (Environment.GetEnvironmentVariable(name) != null) return;
            if (!NativeLibrary.TryLoad("libc.so.6", out var libc) || !NativeLibrary.TryGetExport(libc, "setenv", out var p)) return;
            var setenv = (delegate* unmanaged[Cdecl]<byte*, byte*, int, int>)p;
            var n = System.Text.Encoding.ASCII.GetBytes(name + "\0");
            var v = System.Text.Encoding.ASCII.GetBytes(value + "\0");
            fixed (byte* pn = n, pv = v) setenv(pn, pv, 0);
        }
        catch (Exception) { /* not Linux/glibc: the OpenMP default stays */ }
    }

    /// <summary>
    /// The implementation oneDNN picks for this layout and shape (e.g. "brg:avx512_core_bf16", "gemm:jit",
    /// "ref:any"), creating and caching the primitive; null when oneDNN is unavailable or has none.
    /// </summary>
    public static string? Implementation(bool transA, bool transB, int M, int N, int K, int lda, int ldb, int ldc, float alpha, float beta)
    {
        if (!IsAvailable) return null;
        lock (Gate) return Get(new Key(transA, transB, M, N, K, lda, ldb, ldc, alpha, beta))?.Impl;
    }

    /// <summary>
    /// Row-major C[M,N] = alpha·op(A)·op(B) + beta·C, A and B bfloat16 bits, C float32, products accumulated in
    /// float32. Layout and lengths as in Gemm.Sgemm; the caller has validated shapes and pinned the buffers.
    /// Returns false (C untouched) when oneDNN is unavailable or has no implementation for the shape.
    /// </summary>
    public static bool MatmulBf16(bool transA, bool transB, int M, int N, int K, float alpha,
        ushort* A, int lda, ushort* B, int ldb, float beta, float* C, int ldc)
    {
        if (!IsAvailable) return false;
        lock (Gate)
        {
            var e = Get(new Key(transA, transB, M, N, K, lda, ldb, ldc, alpha, beta));
            if (e == null) return false;
            Check(MemorySetDataHandle(e.MemA, A), "dnnl_memory_set_data_handle(A)");
            Check(MemorySetDataHandle(e.MemB, B), "dnnl_memory_set_data_handle(B)");
            Check(MemorySetDataHandle(e.MemC, C), "dnnl_memory_set_data_handle(C)");
            var args = stackalloc ExecArg[3];
            args[0] = new ExecArg { Arg = ArgSrc, Memory = e.MemA };
            args[1] = new ExecArg { Arg = ArgWeights, Memory = e.MemB };
            args[2] = new ExecArg { Arg = ArgDst, Memory = e.MemC };
            Check(PrimitiveExecute(e.Primitive, Stream, 3, args), "dnnl_primitive_execute(matmul)");
            Check(StreamWait(Stream), "dnnl_stream_wait");
            return true;
        }
    }

    /// <summary>Number of cached primitives (tests: caching per shape).</summary>
    public static int CachedPrimitives { get { lock (Gate) return Cache.Count; } }

    private static void Check(int status, string what)
    {
        if (status != 0) throw new InvalidOperationException($"oneDNN {what} returned status {status}");
    }

    /// <summary>Cached primitives at most: prompts of every length make a new M each; past this the cache is
    /// emptied (a primitive costs well under a millisecond to recreate, a leak would grow without bound).</summary>
    public const int MaxCached = 256;

    /// <summary>Creates (once) the primitive for a key; null when oneDNN has no implementation.</summary>
    private static Entry? Get(Key k)
    {
        if (Cache.TryGetValue(k, out var hit)) return hit.Primitive == 0 ? null : hit;
        if (Cache.Count >= MaxCached)
        {
            foreach (var old in Cache.Values)
            {
                if (old.Primitive == 0) continue;
                PrimitiveDestroy(old.Primitive); MemoryDestroy(old.MemA); MemoryDestroy(old.MemB); MemoryDestroy(old.MemC);
            }
            Cache.Clear();
        }
        var e = new Entry();
        var buf = (byte*)NativeMemory.AllocZeroed(3 * MemoryDescBytes + OpDescBytes);
        nint attr = 0, postOps = 0, pd = 0;
        try
        {
            void* mdA = buf, mdB = buf + MemoryDescBytes, mdC = buf + 2 * MemoryDescBytes, op = buf + 3 * MemoryDescBytes;
            // src = op(A) [M,K], weights = op(B) [K,N], dst = C [M,N]; a transposed operand is the same buffer
            // read with swapped strides, so no layout needs a copy.
            long* dims = stackalloc long[2], strides = stackalloc long[2];
            dims[0] = k.M; dims[1] = k.K; strides[0] = k.TransA ? 1 : k.Lda; strides[1] = k.TransA ? k.Lda : 1;
            Check(MemoryDescInitByStrides(mdA, 2, dims, Bf16, strides), "dnnl_memory_desc_init_by_strides(A)");
            dims[0] = k.K; dims[1] = k.N; strides[0] = k.TransB ? 1 : k.Ldb; strides[1] = k.TransB ? k.Ldb : 1;
            Check(MemoryDescInitByStrides(mdB, 2, dims, Bf16, strides), "dnnl_memory_desc_init_by_strides(B)");
            dims[0] = k.M; dims[1] = k.N; strides[0] = k.Ldc; strides[1] = 1;
            Check(MemoryDescInitByStrides(mdC, 2, dims, F32, strides), "dnnl_memory_desc_init_by_strides(C)");
            Check(MatmulDescInit(op, mdA, mdB, null, mdC), "dnnl_matmul_desc_init");
            Check(AttrCreate(&attr), "dnnl_primitive_attr_create");
            if (k.Alpha != 1f)
            {
                float alpha = k.Alpha;
                Check(AttrSetOutputScales(attr, 1, 0, &alpha), "dnnl_primitive_attr_set_output_scales");
            }
            if (k.Beta != 0f)
            {
                // beta·C: the sum post-op adds scale × (C before the call) to the product.
                Check(PostOpsCreate(&postOps), "dnnl_post_ops_create");
                Check(PostOpsAppendSum(postOps, k.Beta), "dnnl_post_ops_append_sum");
                Check(AttrSetPostOps(attr, postOps), "dnnl_primitive_attr_set_post_ops");
            }
            if (PrimitiveDescCreate(&pd, op, attr, Engine, 0) != 0) { Cache[k] = e; return null; } // unimplemented
            sbyte* impl = null;
            if (PrimitiveDescQuery(pd, QueryImplInfo, 0, &impl) == 0 && impl != null) e.Impl = new string(impl);
            nint prim, ma, mb, mc;
            Check(PrimitiveCreate(&prim, pd), "dnnl_primitive_create");
            // DNNL_MEMORY_NONE: the data handle is set before each execution.
            Check(MemoryCreate(&ma, mdA, Engine, null), "dnnl_memory_create(A)");
            Check(MemoryCreate(&mb, mdB, Engine, null), "dnnl_memory_create(B)");
            Check(MemoryCreate(&mc, mdC, Engine, null), "dnnl_memory_create(C)");
            e.Primitive = prim; e.MemA = ma; e.MemB = mb; e.MemC = mc;
            Cache[k] = e;
            return e;
        }
        finally
        {
            if (pd != 0) PrimitiveDescDestroy(pd);
            if (postOps != 0) PostOpsDestroy(postOps);
            if (attr != 0) AttrDestroy(attr);
            NativeMemory.Free(buf);
        }
    }
}
