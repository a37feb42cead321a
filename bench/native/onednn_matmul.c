// oneDNN matmul throughput on this CPU, outside .NET: bf16 × bf16 → f32 against f32 × f32 → f32, for the
// training GEMM shapes of bench configs M and L and two large square/LLM shapes. It checks a claim the issue
// tracker relies on ("oneDNN's bf16 matmul runs at ~700 GFLOP/s on 2 threads, 3.5× the float32 FMA peak").
//
// Two weight layouts per shape: "plain" (row-major B as our interop passes it every call) and "any" (oneDNN picks
// its blocked layout; B is reordered once outside the timed loop — the best case for a library that caches
// packed weights). Reported per call: wall GFLOP/s and GFLOP per CPU-second (process CPU time, so other load on a
// shared machine shows up as the gap between the two), median of the repeats, and the implementation oneDNN chose.
//
// Build and run (libdnnl-dev provides the header; the library is libdnnl2):
//   gcc -O2 bench/native/onednn_matmul.c -o /tmp/onednn_matmul -ldnnl
//   OMP_NUM_THREADS=1 /tmp/onednn_matmul; OMP_NUM_THREADS=2 /tmp/onednn_matmul
// Optional: argv[1] = repeats (default 7), argv[2] = only shapes whose name contains this text.
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { fprintf(stderr, "%s failed: %d (line %d)\n", #x, (int)s_, __LINE__); exit(1); } } while (0)

typedef struct { const char *name; long M, N, K; } shape_t;

// M, N, K of Y[M,N] = X[M,K] · W[K,N]. Config M: 4 × 512 tokens, dim 512, ffn 1376, vocab 8192.
// Config L: 2 × 512 tokens, dim 768, ffn 2048, vocab 32000.
static const shape_t shapes[] = {
    {"square_2048", 2048, 2048, 2048},
    {"llm_512x11008x4096", 512, 11008, 4096},
    {"M_ffn_up", 2048, 1376, 512},
    {"M_ffn_down", 2048, 512, 1376},
    {"M_attn_proj", 2048, 512, 512},
    {"M_lm_head", 2048, 8192, 512},
    {"L_ffn_up", 1024, 2048, 768},
    {"L_ffn_down", 1024, 768, 2048},
    {"L_attn_proj", 1024, 768, 768},
    {"L_lm_head", 1024, 32000, 768},
};

static double now(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

static unsigned short to_bf16(float f) { unsigned u; memcpy(&u, &f, 4); u += 0x7fff + ((u >> 16) & 1); return (unsigned short)(u >> 16); }

// Times one matmul configuration; prints one line and one JSON line.
static void run(dnnl_engine_t eng, dnnl_stream_t st, const shape_t *sh, int bf16, int anyWeights, int reps)
{
    dnnl_dims_t sd = {sh->M, sh->K}, wd = {sh->K, sh->N}, dd = {sh->M, sh->N};
    dnnl_data_type_t in = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t smd, wmd, wplain, dmd;
    CHECK(dnnl_memory_desc_init_by_tag(&smd, 2, sd, in, dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_tag(&wplain, 2, wd, in, dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_tag(&wmd, 2, wd, in, anyWeights ? dnnl_format_tag_any : dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_tag(&dmd, 2, dd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    CHECK(dnnl_matmul_desc_init(&md, &smd, &wmd, NULL, &dmd));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL));
    const char *impl = "?";
    CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    const dnnl_memory_desc_t *wchosen = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);

    size_t es = bf16 ? 2 : 4;
    void *a = aligned_alloc(64, ((sh->M * sh->K * es) + 63) / 64 * 64);
    void *w = aligned_alloc(64, ((sh->K * sh->N * es) + 63) / 64 * 64);
    float *c = aligned_alloc(64, ((sh->M * sh->N * 4) + 63) / 64 * 64);
    srand(1);
    for (long i = 0; i < sh->M * sh->K; i++) { float v = (float)rand() / RAND_MAX - 0.5f; if (bf16) ((unsigned short *)a)[i] = to_bf16(v); else ((float *)a)[i] = v; }
    for (long i = 0; i < sh->K * sh->N; i++) { float v = (float)rand() / RAND_MAX - 0.5f; if (bf16) ((unsigned short *)w)[i] = to_bf16(v); else ((float *)w)[i] = v; }

    dnnl_memory_t ma, mw, mwp, mc;
    CHECK(dnnl_memory_create(&ma, &smd, eng, a));
    CHECK(dnnl_memory_create(&mwp, &wplain, eng, w));
    CHECK(dnnl_memory_create(&mc, &dmd, eng, c));
    if (anyWeights)
    {
        // Reorder the plain weights once into the layout the primitive chose (not timed).
        CHECK(dnnl_memory_create(&mw, wchosen, eng, DNNL_MEMORY_ALLOCATE));
        dnnl_primitive_desc_t rpd; dnnl_primitive_t rp;
        CHECK(dnnl_reorder_primitive_desc_create(&rpd, &wplain, eng, wchosen, eng, NULL));
        CHECK(dnnl_primitive_create(&rp, rpd));
        dnnl_exec_arg_t rargs[] = {{DNNL_ARG_FROM, mwp}, {DNNL_ARG_TO, mw}};
        CHECK(dnnl_primitive_execute(rp, st, 2, rargs));
        CHECK(dnnl_stream_wait(st));
        dnnl_primitive_destroy(rp); dnnl_primitive_desc_destroy(rpd);
    }
    else mw = mwp;

    dnnl_primitive_t p;
    CHECK(dnnl_primitive_create(&p, pd));
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, mc}};
    // Warm-up (first call JITs and touches the pages).
    CHECK(dnnl_primitive_execute(p, st, 3, args)); CHECK(dnnl_stream_wait(st));
    double flop = 2.0 * sh->M * sh->N * sh->K;
    // Enough calls per sample for about 0.2 s at 200 GFLOP/s.
    int calls = (int)(4e10 / flop); if (calls < 1) calls = 1;
    double wall[64], cpu[64];
    if (reps > 64) reps = 64;
    for (int r = 0; r < reps; r++)
    {
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        for (int i = 0; i < calls; i++) CHECK(dnnl_primitive_execute(p, st, 3, args));
        CHECK(dnnl_stream_wait(st));
        wall[r] = (now(CLOCK_MONOTONIC) - w0) / calls; cpu[r] = (now(CLOCK_PROCESS_CPUTIME_ID) - c0) / calls;
    }
    qsort(wall, reps, sizeof(double), cmp); qsort(cpu, reps, sizeof(double), cmp);
    double gw = flop / wall[reps / 2] / 1e9, gc = flop / cpu[reps / 2] / 1e9, best = flop / wall[0] / 1e9;
    const char *threads = getenv("OMP_NUM_THREADS");
    printf("%-20s %5ldx%5ldx%5ld %-4s W %-5s %8.1f GFLOP/s wall (best %7.1f) %8.1f GFLOP/cpu-s  %s\n",
           sh->name, sh->M, sh->N, sh->K, bf16 ? "bf16" : "f32", anyWeights ? "any" : "plain", gw, best, gc, impl);
    printf("{\"bench\":\"onednn-matmul\",\"shape\":\"%s\",\"m\":%ld,\"n\":%ld,\"k\":%ld,\"dtype\":\"%s\",\"weights\":\"%s\",\"threads\":\"%s\","
           "\"gflops_wall_median\":%.1f,\"gflops_wall_best\":%.1f,\"gflops_per_cpu_s_median\":%.1f,\"impl\":\"%s\"}\n",
           sh->name, sh->M, sh->N, sh->K, bf16 ? "bf16" : "f32", anyWeights ? "any" : "plain", threads ? threads : "default", gw, best, gc, impl);
    fflush(stdout);
    dnnl_primitive_destroy(p); dnnl_primitive_desc_destroy(pd);
    if (anyWeights) dnnl_memory_destroy(mw);
    dnnl_memory_destroy(mwp); dnnl_memory_destroy(ma); dnnl_memory_destroy(mc);
    free(a); free(w); free(c);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    const char *only = argc > 2 ? argv[2] : NULL;
    const dnnl_version_t *v = dnnl_version();
    printf("oneDNN %d.%d.%d (%s), OMP_NUM_THREADS=%s, median of %d samples\n", v->major, v->minor, v->patch, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other runtime",
           getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "(unset)", reps);
    dnnl_engine_t eng; dnnl_stream_t st;
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    {
        if (only && !strstr(shapes[i].name, only)) continue;
        for (int any = 0; any <= 1; any++)
        {
            run(eng, st, &shapes[i], 0, any, reps);
            run(eng, st, &shapes[i], 1, any, reps);
        }
    }
    dnnl_stream_destroy(st); dnnl_engine_destroy(eng);
    return 0;
}
