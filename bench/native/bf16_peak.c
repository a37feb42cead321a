// Register-only peak of the CPU's bf16 dot product against its float32 FMA, one thread, timed in CPU time (so a
// loaded machine changes the wall time, not the figure). vdpbf16ps zmm does 64 FLOP (32 bf16 pairs multiplied and
// summed pairwise into 16 float32 lanes), vfmadd231ps zmm 32 FLOP; 24 independent accumulators hide the latency.
// Build and run (gcc, AVX512-BF16 CPU):
//   gcc -O2 -mavx512f -mavx512bf16 bench/native/bf16_peak.c -o /tmp/bf16_peak && /tmp/bf16_peak
// docs/PERFORMANCE.md ("bf16 compute through oneDNN") quotes its output: it bounds what any bf16 GEMM can gain.
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define ITER 10000000L
#define X24(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) \
               M(12) M(13) M(14) M(15) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23)

int main(void)
{
    __m512 a[24], b[24];
    for (int i = 0; i < 24; i++) { a[i] = _mm512_setzero_ps(); b[i] = _mm512_setzero_ps(); }
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3f80); // bf16 1.0
    __m512 u = _mm512_set1_ps(1.f), v = _mm512_set1_ps(1e-9f);

    double t0 = cpu_seconds();
    for (long i = 0; i < ITER; i++)
    {
#define DP(k) a[k] = _mm512_dpbf16_ps(a[k], x, y);
        X24(DP)
        __asm__ volatile("" : "+v"(x), "+v"(y)); // keep the operands opaque: no hoisting or folding
    }
    double t1 = cpu_seconds();
    for (long i = 0; i < ITER; i++)
    {
#define FM(k) b[k] = _mm512_fmadd_ps(u, v, b[k]);
        X24(FM)
        __asm__ volatile("" : "+v"(u), "+v"(v));
    }
    double t2 = cpu_seconds();

    float check = 0;
    for (int i = 0; i < 24; i++) check += _mm512_reduce_add_ps(a[i]) + _mm512_reduce_add_ps(b[i]);
    double n = 24.0 * ITER;
    double bf16 = 64 * n / (t1 - t0) / 1e9, fp32 = 32 * n / (t2 - t1) / 1e9;
    printf("vdpbf16ps zmm %.1f GFLOP per CPU-second, vfmadd231ps zmm %.1f GFLOP per CPU-second: bf16/fp32 = %.2fx (check %g)\n",
           bf16, fp32, bf16 / fp32, check);
    return 0;
}
