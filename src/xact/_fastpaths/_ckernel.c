/* Fused row kernels for the NumPy (and torch CPU) fast paths.
 *
 * An optional C extension: xact works without it (the NumPy-op kernel of
 * _numpy.py is used then), and the generic code in xact/_logsumexp.py stays
 * the definition. Each kernel reads a row once or twice and writes it once,
 * where the NumPy-op kernel makes a dozen passes over a cache-sized block.
 *
 * The arithmetic is that of xact._kernel, computed in float64:
 *
 *   m = max_j x_j                     (rows with a NaN, or |m| >= 1.7e308,
 *                                      are "bad": left to the caller)
 *   a_j = max(x_j, (m - CUTOFF) - |m| 2^-50)            (float64 input)
 *   s_j + e_j = a_j - m               (TwoSum: exact; float32 input: e_j = 0,
 *                                      float32 - float32 is exact in float64)
 *   t_j = exp(s_j) (1 + e_j)          (the maximum entries, s_j == 0, are
 *                                      counted in k, not summed)
 *   r = sum of t_j over the rest      (compensated: a TwoSum per term)
 *   logsumexp = m + log1p((k - 1) + r)
 *   softmax_j = (s_j == 0 ? 1 : t_j) / (k + r)
 *   log_softmax_j = (s_j - lg) + e_j, or (x_j - m) - lg below the cut-off
 *
 * exp is our own, vectorisable: the table method of Tang (1989) as in the
 * exp of ARM's optimized-routines (and glibc): exp(x) = 2^(k/128) exp(r),
 * |r| <= ln2/256, a table of 2^(j/128) as a double and its relative
 * error, and a degree-5 Taylor polynomial (its truncation error is below
 * 2^-60). Measured against mpmath: at most 0.64 ULP over [-700, 0], and
 * 0.50 ULP (of the subnormal spacing) below, where the rows that need it
 * take the careful variant with the subnormal rounding of glibc.
 *
 * Compiled with -ffp-contract=off (setup.py): TwoSum and the exp's argument
 * reduction need every operation rounded as written.
 *
 * Where the CPU has AVX-512, float32 rows take the kernel of
 * _ckernel_avx512.c instead: the same float64 arithmetic less what float32
 * does not need, about 2.7 times faster (set_isa() selects either, for the
 * tests).
 */
#include "_ckernel.h"
#include "_xla_ffi.h"

#include <fenv.h>
#include <float.h>
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#define CUTOFF 1000.0 /* xact._kernel.CUTOFF */
#define LARGEST XACT_LARGEST
#define LANES 8

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(XACT_NO_CLONES)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif
#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif

/* 2^(j/128) = asdouble(TAB[2j+1] + (j << 45)) * (1 + asdouble(TAB[2j])),
 * generated with mpmath at 200 bits. */
static const uint64_t TAB_DATA[256] = {
    0x0000000000000000ULL, 0x3ff0000000000000ULL,
    0x3c9b3b4f1a88bf6eULL, 0x3feff63da9fb3335ULL,
    0xbc7160139cd8dc5dULL, 0x3fefec9a3e778061ULL,
    0xbc905e7a108766d1ULL, 0x3fefe315e86e7f85ULL,
    0x3c8cd2523567f613ULL, 0x3fefd9b0d3158574ULL,
    0xbc8bce8023f98efaULL, 0x3fefd06b29ddf6deULL,
    0x3c60f74e61e6c861ULL, 0x3fefc74518759bc8ULL,
    0x3c90a3e45b33d399ULL, 0x3fefbe3ecac6f383ULL,
    0x3c979aa65d837b6dULL, 0x3fefb5586cf9890fULL,
    0x3c8eb51a92fdeffcULL, 0x3fefac922b7247f7ULL,
    0x3c3ebe3d702f9cd1ULL, 0x3fefa3ec32d3d1a2ULL,
    0xbc6a033489906e0bULL, 0x3fef9b66affed31bULL,
    0xbc9556522a2fbd0eULL, 0x3fef9301d0125b51ULL,
    0xbc5080ef8c4eea55ULL, 0x3fef8abdc06c31ccULL,
    0xbc91c923b9d5f416ULL, 0x3fef829aaea92de0ULL,
    0x3c80d3e3e95c55afULL, 0x3fef7a98c8a58e51ULL,
    0xbc801b15eaa59348ULL, 0x3fef72b83c7d517bULL,
    0xbc8f1ff055de323dULL, 0x3fef6af9388c8deaULL,
    0x3c8b898c3f1353bfULL, 0x3fef635beb6fcb75ULL,
    0xbc96d99c7611eb26ULL, 0x3fef5be084045cd4ULL,
    0x3c9aecf73e3a2f60ULL, 0x3fef54873168b9aaULL,
    0xbc8fe782cb86389dULL, 0x3fef4d5022fcd91dULL,
    0x3c8a6f4144a6c38dULL, 0x3fef463b88628cd6ULL,
    0x3c807a05b0e4047dULL, 0x3fef3f49917ddc96ULL,
    0x3c968efde3a8a894ULL, 0x3fef387a6e756238ULL,
    0x3c875e18f274487dULL, 0x3fef31ce4fb2a63fULL,
    0x3c80472b981fe7f2ULL, 0x3fef2b4565e27cddULL,
    0xbc96b87b3f71085eULL, 0x3fef24dfe1f56381ULL,
    0x3c82f7e16d09ab31ULL, 0x3fef1e9df51fdee1ULL,
    0xbc3d219b1a6fbffaULL, 0x3fef187fd0dad990ULL,
    0x3c8b3782720c0ab4ULL, 0x3fef1285a6e4030bULL,
    0x3c6e149289cecb8fULL, 0x3fef0cafa93e2f56ULL,
    0x3c834d754db0abb6ULL, 0x3fef06fe0a31b715ULL,
    0x3c864201e2ac744cULL, 0x3fef0170fc4cd831ULL,
    0x3c8fdd395dd3f84aULL, 0x3feefc08b26416ffULL,
    0xbc86a3803b8e5b04ULL, 0x3feef6c55f929ff1ULL,
    0xbc924aedcc4b5068ULL, 0x3feef1a7373aa9cbULL,
    0xbc9907f81b512d8eULL, 0x3feeecae6d05d866ULL,
    0xbc71d1e83e9436d2ULL, 0x3feee7db34e59ff7ULL,
    0xbc991919b3ce1b15ULL, 0x3feee32dc313a8e5ULL,
    0x3c859f48a72a4c6dULL, 0x3feedea64c123422ULL,
    0xbc9312607a28698aULL, 0x3feeda4504ac801cULL,
    0xbc58a78f4817895bULL, 0x3feed60a21f72e2aULL,
    0xbc7c2c9b67499a1bULL, 0x3feed1f5d950a897ULL,
    0x3c4363ed60c2ac11ULL, 0x3feece086061892dULL,
    0x3c9666093b0664efULL, 0x3feeca41ed1d0057ULL,
    0x3c6ecce1daa10379ULL, 0x3feec6a2b5c13cd0ULL,
    0x3c93ff8e3f0f1230ULL, 0x3feec32af0d7d3deULL,
    0x3c7690cebb7aafb0ULL, 0x3feebfdad5362a27ULL,
    0x3c931dbdeb54e077ULL, 0x3feebcb299fddd0dULL,
    0xbc8f94340071a38eULL, 0x3feeb9b2769d2ca7ULL,
    0xbc87deccdc93a349ULL, 0x3feeb6daa2cf6642ULL,
    0xbc78dec6bd0f385fULL, 0x3feeb42b569d4f82ULL,
    0xbc861246ec7b5cf6ULL, 0x3feeb1a4ca5d920fULL,
    0x3c93350518fdd78eULL, 0x3feeaf4736b527daULL,
    0x3c7b98b72f8a9b05ULL, 0x3feead12d497c7fdULL,
    0x3c9063e1e21c5409ULL, 0x3feeab07dd485429ULL,
    0x3c34c7855019c6eaULL, 0x3feea9268a5946b7ULL,
    0x3c9432e62b64c035ULL, 0x3feea76f15ad2148ULL,
    0xbc8ce44a6199769fULL, 0x3feea5e1b976dc09ULL,
    0xbc8c33c53bef4da8ULL, 0x3feea47eb03a5585ULL,
    0xbc845378892be9aeULL, 0x3feea34634ccc320ULL,
    0xbc93cedd78565858ULL, 0x3feea23882552225ULL,
    0x3c5710aa807e1964ULL, 0x3feea155d44ca973ULL,
    0xbc93b3efbf5e2228ULL, 0x3feea09e667f3bcdULL,
    0xbc6a12ad8734b982ULL, 0x3feea012750bdabfULL,
    0xbc6367efb86da9eeULL, 0x3fee9fb23c651a2fULL,
    0xbc80dc3d54e08851ULL, 0x3fee9f7df9519484ULL,
    0xbc781f647e5a3ecfULL, 0x3fee9f75e8ec5f74ULL,
    0xbc86ee4ac08b7db0ULL, 0x3fee9f9a48a58174ULL,
    0xbc8619321e55e68aULL, 0x3fee9feb564267c9ULL,
    0x3c909ccb5e09d4d3ULL, 0x3feea0694fde5d3fULL,
    0xbc7b32dcb94da51dULL, 0x3feea11473eb0187ULL,
    0x3c94ecfd5467c06bULL, 0x3feea1ed0130c132ULL,
    0x3c65ebe1abd66c55ULL, 0x3feea2f336cf4e62ULL,
    0xbc88a1c52fb3cf42ULL, 0x3feea427543e1a12ULL,
    0xbc9369b6f13b3734ULL, 0x3feea589994cce13ULL,
    0xbc805e843a19ff1eULL, 0x3feea71a4623c7adULL,
    0xbc94d450d872576eULL, 0x3feea8d99b4492edULL,
    0x3c90ad675b0e8a00ULL, 0x3feeaac7d98a6699ULL,
    0x3c8db72fc1f0eab4ULL, 0x3feeace5422aa0dbULL,
    0xbc65b6609cc5e7ffULL, 0x3feeaf3216b5448cULL,
    0x3c7bf68359f35f44ULL, 0x3feeb1ae99157736ULL,
    0xbc93091fa71e3d83ULL, 0x3feeb45b0b91ffc6ULL,
    0xbc5da9b88b6c1e29ULL, 0x3feeb737b0cdc5e5ULL,
    0xbc6c23f97c90b959ULL, 0x3feeba44cbc8520fULL,
    0xbc92434322f4f9aaULL, 0x3feebd829fde4e50ULL,
    0xbc85ca6cd7668e4bULL, 0x3feec0f170ca07baULL,
    0x3c71affc2b91ce27ULL, 0x3feec49182a3f090ULL,
    0x3c6dd235e10a73bbULL, 0x3feec86319e32323ULL,
    0xbc87c50422622263ULL, 0x3feecc667b5de565ULL,
    0x3c8b1c86e3e231d5ULL, 0x3feed09bec4a2d33ULL,
    0xbc91bbd1d3bcbb15ULL, 0x3feed503b23e255dULL,
    0x3c90cc319cee31d2ULL, 0x3feed99e1330b358ULL,
    0x3c8469846e735ab3ULL, 0x3feede6b5579fdbfULL,
    0xbc82dfcd978e9db4ULL, 0x3feee36bbfd3f37aULL,
    0x3c8c1a7792cb3387ULL, 0x3feee89f995ad3adULL,
    0xbc907b8f4ad1d9faULL, 0x3feeee07298db666ULL,
    0xbc55c3d956dcaebaULL, 0x3feef3a2b84f15fbULL,
    0xbc90a40e3da6f640ULL, 0x3feef9728de5593aULL,
    0xbc68d6f438ad9334ULL, 0x3feeff76f2fb5e47ULL,
    0xbc91eee26b588a35ULL, 0x3fef05b030a1064aULL,
    0x3c74ffd70a5fddcdULL, 0x3fef0c1e904bc1d2ULL,
    0xbc91bdfbfa9298acULL, 0x3fef12c25bd71e09ULL,
    0x3c736eae30af0cb3ULL, 0x3fef199bdd85529cULL,
    0x3c8ee3325c9ffd94ULL, 0x3fef20ab5fffd07aULL,
    0x3c84e08fd10959acULL, 0x3fef27f12e57d14bULL,
    0x3c63cdaf384e1a67ULL, 0x3fef2f6d9406e7b5ULL,
    0x3c676b2c6c921968ULL, 0x3fef3720dcef9069ULL,
    0xbc808a1883ccb5d2ULL, 0x3fef3f0b555dc3faULL,
    0xbc8fad5d3ffffa6fULL, 0x3fef472d4a07897cULL,
    0xbc900dae3875a949ULL, 0x3fef4f87080d89f2ULL,
    0x3c74a385a63d07a7ULL, 0x3fef5818dcfba487ULL,
    0xbc82919e2040220fULL, 0x3fef60e316c98398ULL,
    0x3c8e5a50d5c192acULL, 0x3fef69e603db3285ULL,
    0x3c843a59ac016b4bULL, 0x3fef7321f301b460ULL,
    0xbc82d52107b43e1fULL, 0x3fef7c97337b9b5fULL,
    0xbc892ab93b470dc9ULL, 0x3fef864614f5a129ULL,
    0x3c74b604603a88d3ULL, 0x3fef902ee78b3ff6ULL,
    0x3c83c5ec519d7271ULL, 0x3fef9a51fbc74c83ULL,
    0xbc8ff7128fd391f0ULL, 0x3fefa4afa2a490daULL,
    0xbc8dae98e223747dULL, 0x3fefaf482d8e67f1ULL,
    0x3c8ec3bc41aa2008ULL, 0x3fefba1bee615a27ULL,
    0x3c842b94c3a9eb32ULL, 0x3fefc52b376bba97ULL,
    0x3c8a64a931d185eeULL, 0x3fefd0765b6e4540ULL,
    0xbc8e37bae43be3edULL, 0x3fefdbfdad9cbe14ULL,
    0x3c77893b4d91cd9dULL, 0x3fefe7c1819e90d8ULL,
    0x3c5305c14160cc89ULL, 0x3feff3c22b8f71f1ULL,
};
/* Read through a volatile pointer: where GCC sees the table's values it
 * does not vectorise the loops that read it (GCC 12). */
static const uint64_t *volatile TAB_PTR = TAB_DATA;

#define INVLN2N 0x1.71547652b82fep+7 /* 128 / ln 2 */
#define SHIFT 0x1.8p52
#define LN2HIN 0x1.62e42ff000000p-8 /* ln2/128, 29 bits: kd * LN2HIN is exact */
#define LN2LON (-0x1.718432a1b0e26p-42)

INLINE double asdouble(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }
INLINE uint64_t asuint64(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }

/* exp(x) for -1100 <= x <= 0 (careful) or -700 <= x <= 0 (not careful);
 * TAB is TAB_PTR. */
INLINE double xexp(const uint64_t *TAB, double x, const int careful)
{
    double kd = x * INVLN2N + SHIFT;
    uint64_t ki = asuint64(kd);
    kd -= SHIFT;
    double r = (x - kd * LN2HIN) - kd * LN2LON;
    uint64_t idx = 2 * (ki & 127);
    uint64_t top = ki << 45;
    double tail = asdouble(TAB[idx]);
    uint64_t sbits = TAB[idx + 1] + top;
    double r2 = r * r;
    double tmp = tail + r + r2 * (0.5 + r * (1.0 / 6)) + r2 * r2 * (1.0 / 24 + r * (1.0 / 120));
    double sc = asdouble(sbits);
    double y = sc + sc * tmp;
    if (!careful)
        return y;
    /* Below exp(-650) the scale 2^(k/128) is scaled up by 2^1022 (else
     * scale * tmp is subnormal, and rounds to 2^-1074: 0.25 ULP of results
     * near 2^-1021, 0.74 ULP measured), and the
     * result rounded once to the subnormal spacing (glibc's specialcase).
     * Where the result is normal, y2 >= 1 and y3 = y2 2^-1022 exactly: y's
     * value, but without y's subnormal scale * tmp, which a caller in an
     * environment that flushes subnormals to zero (XLA's: the sigmoid
     * custom call) lost below exp(-671), where |tmp| > 2^-53 can put it
     * under 2^-1022 (measured: 1.6e-4 relative off near -699.9, and 495
     * ULP at -679.3 with a bound of -680, found in review). */
    double sc2 = asdouble(sbits + (1022ULL << 52));
    double y2 = sc2 + sc2 * tmp;
    double lo = (sc2 - y2) + sc2 * tmp;
    double hi = 1.0 + y2;
    lo = ((1.0 - hi) + y2) + lo;
    double y3 = (y2 < 1.0 ? (hi + lo) - 1.0 : y2) * 0x1p-1022;
    return x < -650.0 ? y3 : y;
}

/* Threads: where the extension is built with OpenMP, a call may split its
 * rows over an OpenMP team, chunks handed out as threads come free. Its
 * threads are those of the process's one libgomp, which PyTorch's CPU
 * operations use too: right after one of them its threads are spinning,
 * waiting for work, and take ours at once, where a thread of xact's own
 * pool would first have to win a core from them.
 *
 * libgomp's threads do not survive fork(): a child that starts a team
 * after its parent did hangs. The child therefore runs every call in one
 * thread (openmp() is False there, and the Python side splits the rows over
 * threads of its own). */
#ifdef _OPENMP
#include <pthread.h>
static volatile int omp_usable = 1;
static void omp_after_fork_in_child(void) { omp_usable = 0; }
#else
static const int omp_usable = 0;
#endif

/* Whether the rows take the AVX-512 kernels (_ckernel_avx512.c): set where
 * the CPU has them; set_isa() switches them off for the tests. */
static int use_avx512 = 0;
/* 0 under set_isa("avx512-rows"): AVX-512 float64 rows one at a time only
 * (for the tests, which compare the two) */
static int small_rows = 1;

enum { LSE = XACT_LSE, SOFTMAX = XACT_SOFTMAX, LOG_SOFTMAX = XACT_LOG_SOFTMAX, PARTS = 3 };

/* Compensated sums of non-negative terms, LANES at a time (GCC's vector
 * extension: one AVX-512 register, two AVX2 ones, or four SSE2 ones). */
typedef double vlanes __attribute__((vector_size(LANES * sizeof(double))));

typedef struct {
    vlanes acc, err, cnt;
} Sums;

INLINE void sums_init(Sums *S)
{
    vlanes z = {0};
    S->acc = S->err = S->cnt = z;
}

INLINE void sums_add(Sums *S, const double *t, const double *is_max)
{
    vlanes tv, kv;
    memcpy(&tv, t, sizeof tv);
    memcpy(&kv, is_max, sizeof kv);
    vlanes y = S->acc + tv;
    vlanes bb = y - S->acc;
    S->err += (S->acc - (y - bb)) + (tv - bb);
    S->acc = y;
    S->cnt += kv;
}

/* The rest r and the count k. */
INLINE void sums_total(const Sums *S, double *rest, double *k)
{
    double hi = 0.0, lo = 0.0, c = 0.0;
    for (int l = 0; l < LANES; l++) {
        double y = hi + S->acc[l];
        double bb = y - hi;
        lo += (hi - (y - bb)) + (S->acc[l] - bb);
        hi = y;
        lo += S->err[l];
        c += S->cnt[l];
    }
    *rest = hi + lo;
    *k = c;
}

INLINE double ld(const void *x, Py_ssize_t j, const int f64)
{
    return f64 ? ((const double *)x)[j] : (double)((const float *)x)[j];
}

/* Pass 1: the row's maximum and minimum; 0 where the row is left to the
 * caller (a NaN, or a maximum that is not below LARGEST in magnitude). */
INLINE int scan(const void *x, Py_ssize_t n, const int f64, double *m_out, double *min_out)
{
    int nan = 0;
    if (f64) {
        const double *xd = (const double *)x;
        double m = xd[0], mn = xd[0];
#pragma omp simd reduction(max : m) reduction(min : mn) reduction(| : nan)
        for (Py_ssize_t j = 0; j < n; j++) {
            double v = xd[j];
            m = v > m ? v : m;
            mn = v < mn ? v : mn;
            nan |= v != v;
        }
        *m_out = m;
        *min_out = mn;
    } else {
        const float *xf = (const float *)x;
        float m = xf[0], mn = xf[0];
#pragma omp simd reduction(max : m) reduction(min : mn) reduction(| : nan)
        for (Py_ssize_t j = 0; j < n; j++) {
            float v = xf[j];
            m = v > m ? v : m;
            mn = v < mn ? v : mn;
            nan |= v != v;
        }
        *m_out = m;
        *min_out = mn;
    }
    return !nan && fabs(*m_out) < LARGEST;
}

/* s + e = x_j - m (clipped at lo for float64), exactly. */
INLINE void shifted(double v, double m, double lo, const int f64, double *s, double *e)
{
    if (f64) {
        double a = v > lo ? v : lo;
        double d = a - m;
        double bb = d - a;
        *s = d;
        *e = (a - (d - bb)) - (bb + m);
    } else {
        *s = v - m; /* exact: two floats within 2^128 of each other */
        *e = 0.0;
    }
}

#define CHUNK 256

/* Pass 2: the sums, in chunks: the terms t_j (0 at the maxima) and is_max
 * of a chunk into buffers on the stack (a loop the compiler vectorises, exp
 * included), then LANES at a time into the sums. With store, the terms go
 * to w[j] instead of the stack (the same loop: a second store in it stopped
 * GCC's vectoriser). */
INLINE void pass2(const void *x, Py_ssize_t n, double m, double *w, double *rest, double *k,
                  const int f64, const int careful, const int store)
{
    if (f64 && !careful && use_avx512) {
        xact_f64_sums((const double *)x, n, m, store ? w : NULL, rest, k);
        return;
    }
    double tb_stack[CHUNK], kb[CHUNK];
    const uint64_t *T = TAB_PTR;
    Sums S;
    sums_init(&S);
    double lo = (m - CUTOFF) - fabs(m) * 0x1p-50;
    for (Py_ssize_t j0 = 0; j0 < n; j0 += CHUNK) {
        Py_ssize_t len = n - j0 < CHUNK ? n - j0 : CHUNK;
        double *tb = store ? w + j0 : tb_stack;
#pragma omp simd
        for (Py_ssize_t c = 0; c < len; c++) {
            double s, e;
            shifted(ld(x, j0 + c, f64), m, lo, f64, &s, &e);
            double t;
            if (careful) {
                t = xexp(T, s < -1100.0 ? -1100.0 : s, 1);
            } else {
                /* float64: every s >= -700 in this row; float32: exp(s) <
                 * 2^-1009 cannot reach a float32 result, and is taken as 0. */
                t = xexp(T, s < -700.0 ? -700.0 : s, 0);
                t = s < -700.0 ? 0.0 : t;
            }
            if (f64)
                t = t * (1.0 + e);
            /* (a double, not an int: a mix of lane widths stops GCC's
             * vectoriser) */
            double is_max = s == 0.0 ? 1.0 : 0.0;
            tb[c] = is_max != 0.0 ? 0.0 : t;
            kb[c] = is_max;
        }
        Py_ssize_t c = 0;
        for (; c + LANES <= len; c += LANES)
            sums_add(&S, tb + c, kb + c);
        if (c < len) {
            double tt[LANES] = {0}, kk[LANES] = {0};
            for (Py_ssize_t i = 0; c + i < len; i++) {
                tt[i] = tb[c + i];
                kk[i] = kb[c + i];
            }
            sums_add(&S, tt, kk);
        }
    }
    sums_total(&S, rest, k);
}

INLINE void log_softmax_row(const void *x, Py_ssize_t n, double m, double lg, void *o,
                            const int f64, const int careful)
{
    if (f64 && !careful && use_avx512) { /* (no entry below m - CUTOFF) */
        xact_f64_shift((const double *)x, n, m, lg, (double *)o);
    } else if (f64) {
        double *od = (double *)o;
        double far = m - CUTOFF;
        for (Py_ssize_t j = 0; j < n; j++) {
            double v = ((const double *)x)[j];
            double d = v - m;
            double bb = d - v;
            double e = (v - (d - bb)) - (bb + m);
            /* exp underflows below the cut-off, the log does not */
            od[j] = v < far ? d - lg : (d - lg) + e;
        }
    } else {
        /* (+ 0.0f: a tiny negative value rounds to -0.0, where the
         * generic float32 arithmetic has +0.0) */
        float *of = (float *)o;
        for (Py_ssize_t j = 0; j < n; j++)
            of[j] = (float)((((const float *)x)[j] - m) - lg) + 0.0f;
    }
}

/* softmax: t_j (in w; 0 at the maxima, whose term is 1) / (k + r). */
INLINE void divide_row(const void *x, const double *w, Py_ssize_t n, double m, double denom,
                       void *o, const int f64)
{
    if (f64 && use_avx512) {
        xact_f64_divide((const double *)x, w, n, m, denom, (double *)o);
    } else if (f64) {
        const double *xd = (const double *)x;
        double *od = (double *)o;
        for (Py_ssize_t j = 0; j < n; j++)
            od[j] = (xd[j] == m ? 1.0 : w[j]) / denom;
    } else {
        const float *xf = (const float *)x;
        float *of = (float *)o;
        for (Py_ssize_t j = 0; j < n; j++)
            of[j] = (float)(((double)xf[j] == m ? 1.0 : w[j]) / denom);
    }
}

/* Rows r0..r1-1 of x (rows of n elements, row_stride bytes apart) into out
 * (contiguous: 1, 2 or n values a row); bad[i] = 1 for each row left to
 * the caller. Returns their number, or -1 (out of memory). */
INLINE Py_ssize_t rows_impl(const char *x, Py_ssize_t row_stride, Py_ssize_t n, char *out,
                            unsigned char *bad, Py_ssize_t r0, Py_ssize_t r1, int mode,
                            const int f64)
{
    const Py_ssize_t isz = f64 ? 8 : 4;
    double *w = NULL;
    if (mode == SOFTMAX && !f64) {
        w = (double *)malloc((size_t)n * sizeof(double));
        if (w == NULL)
            return -1;
    }
    Py_ssize_t nbad = 0;
    for (Py_ssize_t i = r0; i < r1; i++) {
        const void *xr = x + i * row_stride;
        double m, mn, rest, k;
        if (!scan(xr, n, f64, &m, &mn)) {
            bad[i] = 1;
            nbad++;
            continue;
        }
        /* (mn - m, as the kernel's s = a - m rounds it: m - 700 may round too) */
        int careful = f64 && mn - m < -700.0;
        if (mode == SOFTMAX) {
            double *wr = f64 ? (double *)(out + i * n * 8) : w;
            if (careful)
                pass2(xr, n, m, wr, &rest, &k, f64, 1, 1);
            else
                pass2(xr, n, m, wr, &rest, &k, f64, 0, 1);
            divide_row(xr, wr, n, m, k + rest, out + i * n * isz, f64);
            continue;
        }
        if (careful)
            pass2(xr, n, m, NULL, &rest, &k, f64, 1, 0);
        else
            pass2(xr, n, m, NULL, &rest, &k, f64, 0, 0);
        double lg = log1p((k - 1.0) + rest);
        if (mode == LSE) {
            if (f64)
                ((double *)out)[i] = m + lg;
            else
                ((float *)out)[i] = (float)(m + lg);
        } else if (mode == PARTS) {
            ((double *)out)[2 * i] = m;
            ((double *)out)[2 * i + 1] = lg;
        } else {
            log_softmax_row(xr, n, m, lg, out + i * n * isz, f64, careful);
        }
    }
    free(w);
    return nbad;
}

CLONES static Py_ssize_t rows_f64_rows(const char *x, Py_ssize_t rs, Py_ssize_t n, char *out,
                                       unsigned char *bad, Py_ssize_t r0, Py_ssize_t r1,
                                       int mode)
{
    return rows_impl(x, rs, n, out, bad, r0, r1, mode, 1);
}

/* Whether float64 rows of n take xact_f64_small (AVX-512; rows of at most
 * XACT_SMALL_N = 32). Measured on AMD Zen 4, ns a row (logsumexp, softmax)
 * against a row at a time: n = 10: 29, 28 against 85, 70; n = 16: 38, 38
 * against 58, 56; n = 32: 57, 71 against 81, 74; at n = 48 softmax and
 * log_softmax are slower than a row at a time (the gathers and the copy
 * out of the columns). */
static int small_f64(Py_ssize_t n) { return use_avx512 && small_rows && n <= XACT_SMALL_N; }

/* rows_impl for float64, eight short rows at a time where small_f64(n):
 * the same results (xact_f64_small); its rows left over go through
 * rows_impl one at a time. */
static Py_ssize_t rows_f64(const char *x, Py_ssize_t rs, Py_ssize_t n, char *out,
                           unsigned char *bad, Py_ssize_t r0, Py_ssize_t r1, int mode)
{
    if (!small_f64(n))
        return rows_f64_rows(x, rs, n, out, bad, r0, r1, mode);
    Py_ssize_t nbad = 0;
    for (Py_ssize_t i = r0; i < r1; i += 8) {
        int nr = r1 - i < 8 ? (int)(r1 - i) : 8;
        double m[8], lg[8];
        double *o = mode == SOFTMAX || mode == LOG_SOFTMAX ? (double *)out + i * n : NULL;
        unsigned done = xact_f64_small(x + i * rs, rs, nr, n, mode, m, lg, o);
        for (int r = 0; r < nr; r++) {
            Py_ssize_t row = i + r;
            if (!(done >> r & 1))
                nbad += rows_f64_rows(x, rs, n, out, bad, row, row + 1, mode);
            else if (mode == LSE)
                ((double *)out)[row] = m[r] + lg[r];
            else if (mode == PARTS) {
                ((double *)out)[2 * row] = m[r];
                ((double *)out)[2 * row + 1] = lg[r];
            }
        }
    }
    return nbad;
}

CLONES static Py_ssize_t rows_f32_portable(const char *x, Py_ssize_t rs, Py_ssize_t n,
                                           char *out, unsigned char *bad, Py_ssize_t r0,
                                           Py_ssize_t r1, int mode)
{
    return rows_impl(x, rs, n, out, bad, r0, r1, mode, 0);
}


/* rows_impl for float32 with the AVX-512 kernel: the same results to within
 * an ULP of float64 before the rounding to float32. */
static Py_ssize_t rows_f32_avx512(const char *x, Py_ssize_t rs, Py_ssize_t n, char *out,
                                  unsigned char *bad, Py_ssize_t r0, Py_ssize_t r1, int mode,
                                  int stream)
{
    double *w = NULL;
    if (mode == SOFTMAX) {
        w = (double *)malloc((size_t)n * sizeof(double));
        if (w == NULL)
            return -1;
    }
    Py_ssize_t nbad = 0;
    for (Py_ssize_t i = r0; i < r1; i++) {
        const float *xr = (const float *)(x + i * rs);
        const float *next = i + 1 < r1 ? (const float *)(x + (i + 1) * rs) : NULL;
        double m;
        if (!xact_f32_max(xr, n, &m)) {
            bad[i] = 1;
            nbad++;
            continue;
        }
        if (mode == SOFTMAX) {
            double inv = 1.0 / xact_f32_exps(xr, n, m, w, next);
            xact_f32_scale(w, n, inv, (float *)out + i * n, stream);
            continue;
        }
        double rest = xact_f32_sum(xr, n, m, next);
        double lg = log1p(rest);
        if (mode == LSE) {
            ((float *)out)[i] = (float)(m + lg);
        } else if (mode == PARTS) {
            ((double *)out)[2 * i] = m;
            ((double *)out)[2 * i + 1] = lg;
        } else {
            xact_f32_shift(xr, n, m, lg, (float *)out + i * n, stream);
        }
    }
    free(w);
    return nbad;
}

/* Whether the rows of a call (rows of n) write their output with
 * non-temporal stores: softmax and log_softmax of float32, on AVX-512, where
 * the output is larger than STREAM_BYTES and the memory a row's passes
 * touch (x's row and the output's, and softmax's float64 terms: 16 bytes
 * an entry; log_softmax 8) is STREAM_ROW_BYTES or more, half the L2 cache
 * a core of AMD Zen 4 has (1 MiB). There a normal store's line takes L2
 * space the row's next pass needs: measured on Zen 4 (2 threads), a
 * float32 softmax of 64x50257 (804 KB a row) took 7 to 20% less time
 * streamed. Shorter rows stay in cache either way, and a normal store
 * then wins: the line it reads first is often in cache already (an output
 * where the allocator's last output was, or a page the kernel has just
 * zeroed): 4096x1000, 5 to 10% less time than streamed. The float64 rows
 * write their terms into the output and divide them there, so its lines
 * are in cache already. */
#define STREAM_BYTES ((Py_ssize_t)4 << 20)
#define STREAM_ROW_BYTES ((Py_ssize_t)512 << 10)
static int streams(Py_ssize_t rows, Py_ssize_t n, int f64, int mode)
{
    return !f64 && (mode == SOFTMAX || mode == LOG_SOFTMAX) &&
           n * (mode == SOFTMAX ? 16 : 8) >= STREAM_ROW_BYTES && rows * n >= STREAM_BYTES / 4;
}

/* stream: see streams() */
static Py_ssize_t rows_f32(const char *x, Py_ssize_t rs, Py_ssize_t n, char *out,
                           unsigned char *bad, Py_ssize_t r0, Py_ssize_t r1, int mode, int stream)
{
    if (use_avx512) /* (non-temporal stores need whole floats: out 4-byte aligned) */
        return rows_f32_avx512(x, rs, n, out, bad, r0, r1, mode,
                               stream && !((uintptr_t)out & 3));
    return rows_f32_portable(x, rs, n, out, bad, r0, r1, mode);
}

/* A row the kernels leave to the caller (scan() is 0: a NaN, an infinite
 * maximum, or |max| >= LARGEST), by the generic code's rules
 * (xact/_logsumexp.py), for the callers that cannot run the generic code
 * on it cheaply (the XLA custom calls). With k the number of entries
 * equal to the maximum m:
 *
 *   a NaN anywhere     every result NaN
 *   m = +inf           logsumexp +inf; softmax 1/k at the maxima, 0
 *                      elsewhere; log_softmax -log1p(k - 1) there, -inf
 *                      elsewhere
 *   m = -inf           (every entry) logsumexp -inf, softmax 0,
 *                      log_softmax -inf
 *   |m| >= LARGEST     (float64, finite) doubles there are 2^971 apart, so
 *                      the maxima are the only entries within CUTOFF of m:
 *                      the generic terms are 1 at the maxima and 0
 *                      elsewhere. logsumexp m + log1p(k - 1); softmax 1/k
 *                      and 0; log_softmax (0 - lg) + 0 at the maxima,
 *                      (x - m) - lg below, -inf where x - m overflows
 *
 * in float64 (for float32 rows: 1/k and log1p(k - 1), rounded once to
 * float32). Returns the row's log-sum-exp; writes the row's softmax or
 * log_softmax into o (n values of the row's format) unless o is NULL; for
 * cross_entropy, *lp_t (unless lp_t is NULL) is the log-probability at
 * entry t, + 0.0 (the generic code sums it with zeros). */
static double special_row(const void *x, Py_ssize_t n, int mode, const int f64, void *o,
                          Py_ssize_t t, double *lp_t)
{
    double m = -INFINITY, k = 0.0;
    int nan = 0;
    for (Py_ssize_t j = 0; j < n; j++) {
        double v = ld(x, j, f64);
        nan |= v != v;
        m = v > m ? v : m;
    }
    for (Py_ssize_t j = 0; j < n; j++)
        k += ld(x, j, f64) == m;
    double lg = log1p(k - 1.0);
    for (Py_ssize_t j = 0; j < n && (o != NULL || (lp_t != NULL && j <= t)); j++) {
        double v = ld(x, j, f64), r, lp;
        if (nan) {
            r = lp = NAN;
        } else if (m == -INFINITY) { /* no mass */
            r = 0.0, lp = -INFINITY;
        } else if (v == m) { /* (+inf: the generic code's -lg; finite: its
                              * (d - lg) + e with d = e = 0) */
            r = 1.0 / k;
            lp = isinf(m) ? -lg : (0.0 - lg) + 0.0;
        } else {
            r = 0.0;
            lp = isinf(m) || isinf(v) || 0.5 * v - 0.5 * m < -0.5 * DBL_MAX ? -INFINITY
                                                                         : (v - m) - lg;
        }
        if (lp_t != NULL && j == t)
            *lp_t = lp + 0.0;
        if (o == NULL)
            continue;
        double value = mode == SOFTMAX ? r : lp;
        if (f64)
            ((double *)o)[j] = value;
        else
            ((float *)o)[j] = (float)value;
    }
    return nan ? NAN : isinf(m) ? m : m + lg;
}

/* The rows flagged in bad (bad[i] = 1: left to the caller) by
 * special_row's rules, into out (as rows_impl writes it); clears their
 * flags. */
static void special_rows(const char *x, Py_ssize_t rs, Py_ssize_t n, char *out,
                         unsigned char *bad, Py_ssize_t rows, int mode, const int f64)
{
    const Py_ssize_t isz = f64 ? 8 : 4;
    for (Py_ssize_t i = 0; i < rows; i++) {
        if (!bad[i])
            continue;
        bad[i] = 0;
        if (mode == LSE) {
            double lse = special_row(x + i * rs, n, mode, f64, NULL, 0, NULL);
            if (f64)
                ((double *)out)[i] = lse;
            else
                ((float *)out)[i] = (float)lse;
        } else {
            special_row(x + i * rs, n, mode, f64, out + i * n * isz, 0, NULL);
        }
    }
}

/* The losses of the rows flagged in bad, by special_row's rules (their
 * targets are in range and not ignored: ce_impl flags no other row); clears
 * their flags. */
static void special_ce(const char *x, Py_ssize_t rs, Py_ssize_t n, const int64_t *target,
                       double *loss, unsigned char *bad, Py_ssize_t rows, const int f64)
{
    for (Py_ssize_t i = 0; i < rows; i++) {
        if (!bad[i])
            continue;
        bad[i] = 0;
        double lp = NAN;
        special_row(x + i * rs, n, LOG_SOFTMAX, f64, NULL, (Py_ssize_t)target[i], &lp);
        loss[i] = -lp;
    }
}

/* A float32 sample's loss, in float64: -0.0 where it rounds to 0 in
 * float32. The generic float32 code's loss is then -(+0.0): its terms
 * exp(x_j - m) underflow to 0 in float32, where the kernel's (float64, or
 * exp(-700) for each entry far below the maximum in the AVX-512 sum) leave
 * a positive loss of 1e-300 or so. */
INLINE double f32_loss(double loss)
{
    return (float)loss == 0.0f ? -0.0 : loss;
}

/* cross_entropy with class indices: the loss of each row r0..r1-1 into
 * loss (float64), -0.0 where target == ignore (has_ignore). Counts, into
 * counts[0..2]: rows left to the caller (no finite maximum; loss not
 * written), targets out of range and not ignored (loss NaN, as torch's
 * generic rule has it; the row is not read), and the rows that count (not
 * ignored). Where bad is not NULL, bad[i] = 1 for each row left to the
 * caller. */
INLINE void ce_impl(const char *x, Py_ssize_t row_stride, Py_ssize_t n, const int64_t *target,
                    double *loss, Py_ssize_t r0, Py_ssize_t r1, int has_ignore,
                    int64_t ignore, Py_ssize_t *counts, unsigned char *bad, const int f64)
{
    for (Py_ssize_t i = r0; i < r1; i++) {
        int64_t ti = target[i];
        if (has_ignore && ti == ignore) {
            loss[i] = -0.0; /* as the generic -where(active, lp, 0) */
            continue;
        }
        if (ti < 0 || ti >= n) {
            loss[i] = NAN;
            counts[1]++;
            continue;
        }
        const void *xr = x + i * row_stride;
        double m, mn, rest, k;
        if (!scan(xr, n, f64, &m, &mn)) {
            counts[0]++;
            if (bad)
                bad[i] = 1;
            continue;
        }
        if (f64 && mn - m < -700.0)
            pass2(xr, n, m, NULL, &rest, &k, f64, 1, 0);
        else
            pass2(xr, n, m, NULL, &rest, &k, f64, 0, 0);
        double lg = log1p((k - 1.0) + rest);
        double xt = ld(xr, ti, f64);
        double d = xt - m; /* exact for float32; -inf for a -inf logit */
        double lp = d - lg;
        if (f64 && isfinite(d)) { /* TwoSum: xt - m == d + e */
            double b = d - xt;
            double e = (xt - (d - b)) - (m + b);
            lp = lp + e;
        }
        loss[i] = f64 ? -lp : f32_loss(-lp);
        counts[2]++;
    }
}

CLONES static void ce_f64_rows(const char *x, Py_ssize_t rs, Py_ssize_t n, const int64_t *t,
                               double *loss, Py_ssize_t r0, Py_ssize_t r1, int hi, int64_t ig,
                               Py_ssize_t *counts, unsigned char *bad)
{
    ce_impl(x, rs, n, t, loss, r0, r1, hi, ig, counts, bad, 1);
}

/* ce_impl for float64, eight short rows at a time where small_f64(n) (as
 * rows_f64): the same losses and counts. */
static void ce_f64(const char *x, Py_ssize_t rs, Py_ssize_t n, const int64_t *t, double *loss,
                   Py_ssize_t r0, Py_ssize_t r1, int hi, int64_t ig, Py_ssize_t *counts,
                   unsigned char *bad)
{
    if (!small_f64(n)) {
        ce_f64_rows(x, rs, n, t, loss, r0, r1, hi, ig, counts, bad);
        return;
    }
    for (Py_ssize_t i = r0; i < r1; i += 8) {
        int nr = r1 - i < 8 ? (int)(r1 - i) : 8;
        double m[8], lg[8];
        unsigned done = xact_f64_small(x + i * rs, rs, nr, n, LSE, m, lg, NULL);
        for (int r = 0; r < nr; r++) {
            Py_ssize_t row = i + r;
            int64_t ti = t[row];
            if (!(done >> r & 1) || (hi && ti == ig) || ti < 0 || ti >= n) {
                ce_f64_rows(x, rs, n, t, loss, row, row + 1, hi, ig, counts, bad);
                continue;
            }
            /* ce_impl's loss; every entry of a row done is finite */
            double xt = ((const double *)(x + row * rs))[ti];
            double d = xt - m[r];
            double b = d - xt;
            double e = (xt - (d - b)) - (m[r] + b);
            loss[row] = -((d - lg[r]) + e);
            counts[2]++;
        }
    }
}

CLONES static void ce_f32_portable(const char *x, Py_ssize_t rs, Py_ssize_t n,
                                   const int64_t *t, double *loss, Py_ssize_t r0,
                                   Py_ssize_t r1, int hi, int64_t ig, Py_ssize_t *counts,
                                   unsigned char *bad)
{
    ce_impl(x, rs, n, t, loss, r0, r1, hi, ig, counts, bad, 0);
}

/* ce_impl for float32 with the AVX-512 kernel. */
static void ce_f32_avx512(const char *x, Py_ssize_t rs, Py_ssize_t n, const int64_t *target,
                          double *loss, Py_ssize_t r0, Py_ssize_t r1, int has_ignore,
                          int64_t ignore, Py_ssize_t *counts, unsigned char *bad)
{
    for (Py_ssize_t i = r0; i < r1; i++) {
        int64_t ti = target[i];
        if (has_ignore && ti == ignore) {
            loss[i] = -0.0;
            continue;
        }
        if (ti < 0 || ti >= n) {
            loss[i] = NAN;
            counts[1]++;
            continue;
        }
        const float *xr = (const float *)(x + i * rs);
        double m;
        if (!xact_f32_max(xr, n, &m)) {
            counts[0]++;
            if (bad)
                bad[i] = 1;
            continue;
        }
        /* (the next row's target may be ignored: its row still is a
         * likely next read, and a fetch of a row not read costs little) */
        const float *next = i + 1 < r1 ? (const float *)(x + (i + 1) * rs) : NULL;
        double lg = log1p(xact_f32_sum(xr, n, m, next));
        loss[i] = f32_loss(-(((double)xr[ti] - m) - lg)); /* x_t - m: exact */
        counts[2]++;
    }
}

static void ce_f32(const char *x, Py_ssize_t rs, Py_ssize_t n, const int64_t *t, double *loss,
                   Py_ssize_t r0, Py_ssize_t r1, int hi, int64_t ig, Py_ssize_t *counts,
                   unsigned char *bad)
{
    if (use_avx512)
        ce_f32_avx512(x, rs, n, t, loss, r0, r1, hi, ig, counts, bad);
    else
        ce_f32_portable(x, rs, n, t, loss, r0, r1, hi, ig, counts, bad);
}

static void ce_threads(const char *x, Py_ssize_t rs, Py_ssize_t n, const int64_t *t,
                       double *loss, Py_ssize_t r0, Py_ssize_t r1, int hi, int64_t ig,
                       Py_ssize_t *counts, unsigned char *bad, int f64, int threads,
                       Py_ssize_t chunk)
{
    if (threads <= 1 || !omp_usable || chunk >= r1 - r0) {
        if (f64)
            ce_f64(x, rs, n, t, loss, r0, r1, hi, ig, counts, bad);
        else
            ce_f32(x, rs, n, t, loss, r0, r1, hi, ig, counts, bad);
        return;
    }
    if (chunk < 1)
        chunk = 1;
    Py_ssize_t nchunks = (r1 - r0 + chunk - 1) / chunk;
    Py_ssize_t c0 = 0, c1 = 0, c2 = 0;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(+ : c0, c1, c2)
#endif
    for (Py_ssize_t c = 0; c < nchunks; c++) {
        Py_ssize_t a = r0 + c * chunk, b = a + chunk < r1 ? a + chunk : r1;
        Py_ssize_t k[3] = {0, 0, 0};
        if (f64)
            ce_f64(x, rs, n, t, loss, a, b, hi, ig, k, bad);
        else
            ce_f32(x, rs, n, t, loss, a, b, hi, ig, k, bad);
        c0 += k[0];
        c1 += k[1];
        c2 += k[2];
    }
    counts[0] += c0;
    counts[1] += c1;
    counts[2] += c2;
}

PyDoc_STRVAR(ce_doc,
"cross_entropy(x, target, loss, ignore, r0, r1, threads=1, chunk=1)\n"
"    -> (n_bad, n_invalid, n_counted)\n\n"
"The loss (float64) of rows r0..r1-1 of the 2-D float32/float64 buffer x\n"
"(unit stride along a row) with the int64 class indices target; ignore is\n"
"an int (those rows get -0.0 and do not count; beyond int64, none) or\n"
"None. Rows without a finite maximum are counted, not computed; targets\n"
"out of range are counted, and their loss is NaN. With threads > 1 (and\n"
"openmp()), the rows in chunks of chunk rows over that many OpenMP threads.");

/* ignore_index: None, or an int (beyond int64: no target equals it) */
static int parse_ignore(PyObject *io, int *has_ignore, int64_t *ignore)
{
    *has_ignore = io != Py_None;
    *ignore = 0;
    if (*has_ignore) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(io, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (overflow)
            *has_ignore = 0;
        *ignore = (int64_t)v;
    }
    return 0;
}

/* The buffers of cross_entropy() and cross_entropy_reduce(): x (strided),
 * target (C-contiguous) and the writable out; -1 with nothing held on
 * failure. */
static int ce_buffers(PyObject *xo, PyObject *to, PyObject *oo, Py_buffer *xb, Py_buffer *tb,
                      Py_buffer *ob)
{
    if (PyObject_GetBuffer(xo, xb, PyBUF_STRIDES | PyBUF_FORMAT) < 0)
        return -1;
    if (PyObject_GetBuffer(to, tb, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(xb);
        return -1;
    }
    if (PyObject_GetBuffer(oo, ob, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(xb);
        PyBuffer_Release(tb);
        return -1;
    }
    return 0;
}

static PyObject *ck_cross_entropy(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *xo, *to, *lo, *io;
    Py_ssize_t r0, r1, chunk = 1;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "OOOOnn|in:cross_entropy", &xo, &to, &lo, &io, &r0, &r1,
                          &threads, &chunk))
        return NULL;
    int has_ignore;
    int64_t ignore;
    if (parse_ignore(io, &has_ignore, &ignore) < 0)
        return NULL;
    Py_buffer xb, tb, lb;
    if (ce_buffers(xo, to, lo, &xb, &tb, &lb) < 0)
        return NULL;
    PyObject *result = NULL;
    const char *xf = xb.format ? xb.format : "B";
    int f64 = strcmp(xf, "d") == 0;
    Py_ssize_t rows = xb.ndim == 2 ? xb.shape[0] : 0;
    Py_ssize_t n = xb.ndim == 2 ? xb.shape[1] : 0;
    const char *tf = tb.format ? tb.format : "B";
    int t64 = tb.itemsize == 8 && (strcmp(tf, "l") == 0 || strcmp(tf, "q") == 0);
    if (xb.ndim != 2 || !(f64 || strcmp(xf, "f") == 0) || xb.strides[1] != xb.itemsize ||
        n < 1) {
        PyErr_SetString(PyExc_ValueError, "cross_entropy: x must be a 2-D float32 or float64 "
                                          "buffer with unit stride along its rows");
    } else if (!t64 || tb.len < rows * 8) {
        PyErr_SetString(PyExc_ValueError, "cross_entropy: target must be int64, a value a row");
    } else if (!lb.format || strcmp(lb.format, "d") != 0 || lb.len < rows * 8) {
        PyErr_SetString(PyExc_ValueError, "cross_entropy: loss must be float64, a value a row");
    } else if (r0 < 0 || r0 > r1 || r1 > rows) {
        PyErr_SetString(PyExc_ValueError, "cross_entropy: the range is out of bounds");
    } else {
        Py_ssize_t counts[3] = {0, 0, 0};
        Py_BEGIN_ALLOW_THREADS
        ce_threads((const char *)xb.buf, xb.strides[0], n, (const int64_t *)tb.buf,
                   (double *)lb.buf, r0, r1, has_ignore, ignore, counts, NULL, f64,
                   threads, chunk);
        Py_END_ALLOW_THREADS
        result = Py_BuildValue("(nnn)", counts[0], counts[1], counts[2]);
    }
    PyBuffer_Release(&xb);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&lb);
    return result;
}

static Py_ssize_t rows_threads(const char *x, Py_ssize_t rs, Py_ssize_t n, char *out,
                               unsigned char *bad, Py_ssize_t r0, Py_ssize_t r1, int mode,
                               int f64, int threads, Py_ssize_t chunk)
{
    int stream = streams(r1 - r0, n, f64, mode);
    if (threads <= 1 || !omp_usable || chunk >= r1 - r0)
        return f64 ? rows_f64(x, rs, n, out, bad, r0, r1, mode)
                   : rows_f32(x, rs, n, out, bad, r0, r1, mode, stream);
    if (chunk < 1)
        chunk = 1;
    Py_ssize_t nchunks = (r1 - r0 + chunk - 1) / chunk;
    Py_ssize_t nbad = 0, oom = 0;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(+ : nbad, oom)
#endif
    for (Py_ssize_t c = 0; c < nchunks; c++) {
        Py_ssize_t a = r0 + c * chunk, b = a + chunk < r1 ? a + chunk : r1;
        Py_ssize_t nb = f64 ? rows_f64(x, rs, n, out, bad, a, b, mode)
                            : rows_f32(x, rs, n, out, bad, a, b, mode, stream);
        if (nb < 0)
            oom++;
        else
            nbad += nb;
    }
    return oom ? -1 : nbad;
}

PyDoc_STRVAR(rows_doc,
"rows(x, out, bad, mode, r0, r1, threads=1, chunk=1) -> int\n\n"
"Rows r0..r1-1 of the 2-D float32/float64 buffer x (unit stride along a\n"
"row) into out (C-contiguous: x's dtype with 1 (mode 0, logsumexp) or n\n"
"(1 softmax, 2 log_softmax) values a row, or float64 with 2 (mode 3: the\n"
"maximum and log(k + r))). Sets bad[i] = 1 for each row left to the\n"
"caller (a NaN, or |max| >= 1.7e308) and returns their number. The GIL is\n"
"released while it runs. With threads > 1 (and openmp()), the rows in\n"
"chunks of chunk rows over that many OpenMP threads.");

static PyObject *ck_rows(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *xo, *oo, *bo;
    int mode, threads = 1;
    Py_ssize_t r0, r1, chunk = 1;
    if (!PyArg_ParseTuple(args, "OOOinn|in:rows", &xo, &oo, &bo, &mode, &r0, &r1, &threads,
                          &chunk))
        return NULL;
    Py_buffer xb, ob, bb;
    if (PyObject_GetBuffer(xo, &xb, PyBUF_STRIDES | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(oo, &ob, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&xb);
        return NULL;
    }
    if (PyObject_GetBuffer(bo, &bb, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&xb);
        PyBuffer_Release(&ob);
        return NULL;
    }
    PyObject *result = NULL;
    const char *xf = xb.format ? xb.format : "B";
    const char *of = ob.format ? ob.format : "B";
    int f64 = strcmp(xf, "d") == 0;
    Py_ssize_t rows = xb.ndim == 2 ? xb.shape[0] : 0;
    Py_ssize_t n = xb.ndim == 2 ? xb.shape[1] : 0;
    Py_ssize_t per_row = mode == LSE ? 1 : mode == PARTS ? 2 : n;
    Py_ssize_t osz = mode == PARTS ? 8 : xb.itemsize;
    if (xb.ndim != 2 || !(f64 || strcmp(xf, "f") == 0) || xb.strides[1] != xb.itemsize ||
        n < 1) {
        PyErr_SetString(PyExc_ValueError, "rows: x must be a 2-D float32 or float64 buffer "
                                          "with unit stride along its rows");
    } else if (mode < LSE || mode > PARTS) {
        PyErr_SetString(PyExc_ValueError, "rows: mode must be 0, 1, 2 or 3");
    } else if (strcmp(of, mode == PARTS ? "d" : xf) != 0 || ob.len < rows * per_row * osz) {
        PyErr_SetString(PyExc_ValueError, "rows: out has the wrong dtype or size");
    } else if (bb.len < rows || bb.itemsize != 1) {
        PyErr_SetString(PyExc_ValueError, "rows: bad must hold a byte a row");
    } else if (r0 < 0 || r0 > r1 || r1 > rows) {
        PyErr_SetString(PyExc_ValueError, "rows: the range is out of bounds");
    } else {
        Py_ssize_t nbad;
        Py_BEGIN_ALLOW_THREADS
        nbad = rows_threads((const char *)xb.buf, xb.strides[0], n, (char *)ob.buf,
                            (unsigned char *)bb.buf, r0, r1, mode, f64, threads, chunk);
        Py_END_ALLOW_THREADS
        if (nbad < 0)
            PyErr_NoMemory();
        else
            result = PyLong_FromSsize_t(nbad);
    }
    PyBuffer_Release(&xb);
    PyBuffer_Release(&ob);
    PyBuffer_Release(&bb);
    return result;
}

/* ------------------------------------------------------------------------
 * sigmoid, elementwise: t = exp(-|x|), (x >= 0 ? 1 : t) / (1 + t) in
 * float64, as the NumPy path (and the generic code) computes it, one
 * rounding for float32. The exp is the careful one: subnormal results keep
 * their digits. */

INLINE void sigmoid_impl(const void *x, void *o, Py_ssize_t n, const int f64)
{
    const uint64_t *T = TAB_PTR;
#pragma omp simd
    for (Py_ssize_t j = 0; j < n; j++) {
        double v = ld(x, j, f64);
        double s = -fabs(v);
        double t = xexp(T, s < -1100.0 ? -1100.0 : s, 1); /* (NaN stays NaN) */
        double r = (v >= 0.0 ? 1.0 : t) / (1.0 + t);
        if (f64)
            ((double *)o)[j] = r;
        else
            ((float *)o)[j] = (float)r;
    }
}

CLONES static void sigmoid_f64_portable(const void *x, void *o, Py_ssize_t n)
{
    sigmoid_impl(x, o, n, 1);
}

CLONES static void sigmoid_f32_portable(const void *x, void *o, Py_ssize_t n)
{
    sigmoid_impl(x, o, n, 0);
}

static void sigmoid_run(const char *x, char *o, Py_ssize_t n, int f64)
{
    if (use_avx512 && f64)
        xact_sigmoid_f64((const double *)x, (double *)o, n);
    else if (use_avx512)
        xact_sigmoid_f32((const float *)x, (float *)o, n);
    else if (f64)
        sigmoid_f64_portable(x, o, n);
    else
        sigmoid_f32_portable(x, o, n);
}

/* Elementwise modes: sigmoid, log_sigmoid, softplus, and the float32 lanes
 * of sigmoid (AVX-512 only: the caller checks use_avx512). */
enum { EW_SIGMOID = 0, EW_LOG_SIGMOID = 1, EW_SOFTPLUS = 2, EW_SIGMOID_LANES = 3 };

/* log_sigmoid (sign -1) and softplus (+1) with libm's exp and log1p, in
 * float64: (min or max)(x, 0) + sign log1p(exp(-|x|)), the generic formula
 * (NaN stays NaN through exp). For the XLA handler where the AVX-512 kernel
 * is not in use; the NumPy and torch paths run their own operations there
 * (log1p_exp() and log1p_exp_at() decline). */
static void log1p_exp_portable(const char *x, char *o, Py_ssize_t n, int f64, double sign)
{
    for (Py_ssize_t j = 0; j < n; j++) {
        double v = f64 ? ((const double *)x)[j] : (double)((const float *)x)[j];
        double l = log1p(exp(-fabs(v)));
        double r = sign < 0 ? (v >= 0.0 ? 0.0 : v) - l : (v >= 0.0 ? v : 0.0) + l;
        if (f64)
            ((double *)o)[j] = r;
        else
            ((float *)o)[j] = (float)r;
    }
}

static void ew_run(const char *x, char *o, Py_ssize_t n, int f64, int mode)
{
    if (mode == EW_SIGMOID) {
        sigmoid_run(x, o, n, f64);
        return;
    }
    if (mode == EW_SIGMOID_LANES) { /* (float32, AVX-512: checked by the caller) */
        xact_sigmoid_f32_lanes((const float *)x, (float *)o, n);
        return;
    }
    double sign = mode == EW_LOG_SIGMOID ? -1.0 : 1.0;
    if (!use_avx512)
        log1p_exp_portable(x, o, n, f64, sign);
    else if (f64)
        xact_log1p_exp_f64((const double *)x, (double *)o, n, sign);
    else
        xact_log1p_exp_f32((const float *)x, (float *)o, n, sign);
}

/* ew_run for the XLA handler, in XLA's floating-point environment, where
 * a float32 log_sigmoid beyond 87.3 (a float64 result between -FLT_MIN and
 * 0) converts to -0.0: the generic code gives +0.0 there under XLA, which
 * flushes exp(-x) to 0 before the subtraction (as it does in float64,
 * where the kernel gives +0.0 too), so 0.0 is added (-0.0 + 0.0 = +0.0;
 * nothing else changes). A float32 sigmoid of more than EW_LANES elements
 * takes the float32 lanes (AVX-512), as the torch path's large tensors:
 * decided here, on the n of this call, so that a vmapped call (more
 * elements than the traced one) computes as the same call unbatched. */
#define EW_LANES ((Py_ssize_t)1 << 14) /* xact._fastpaths._numpy.SMALL */
static void ew_run_xla(const char *x, char *o, Py_ssize_t n, Py_ssize_t total, int f64, int mode)
{
    if (mode == EW_SIGMOID && !f64 && use_avx512 && total > EW_LANES)
        mode = EW_SIGMOID_LANES;
    ew_run(x, o, n, f64, mode);
    if (mode == EW_LOG_SIGMOID && !f64)
        for (Py_ssize_t j = 0; j < n; j++)
            ((float *)o)[j] += 0.0f;
}

/* n elements in chunks of chunk over threads OpenMP threads */
static void ew_threads(const char *x, char *o, Py_ssize_t n, int f64, int mode, int threads,
                       Py_ssize_t chunk)
{
    if (threads <= 1 || !omp_usable || chunk >= n) {
        ew_run(x, o, n, f64, mode);
        return;
    }
    if (chunk < 1)
        chunk = 1;
    const Py_ssize_t isz = f64 ? 8 : 4;
    Py_ssize_t nchunks = (n + chunk - 1) / chunk;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
#endif
    for (Py_ssize_t c = 0; c < nchunks; c++) {
        Py_ssize_t a = c * chunk, len = a + chunk < n ? chunk : n - a;
        ew_run(x + a * isz, o + a * isz, len, f64, mode);
    }
}

PyDoc_STRVAR(sigmoid_doc,
"sigmoid(x, out, threads=1, chunk=1)\n\n"
"sigmoid of the C-contiguous float32 or float64 buffer x into out (the same\n"
"format and size): (x >= 0 ? 1 : t) / (1 + t), t = exp(-|x|), in float64,\n"
"rounded once for float32. With threads > 1 (and openmp()), in chunks of\n"
"chunk elements over that many OpenMP threads. The GIL is released.");

/* x into out (buffers) in mode, over threads */
static PyObject *ew_buffers(PyObject *xo, PyObject *oo, int mode, int threads, Py_ssize_t chunk,
                            const char *name)
{
    Py_buffer xb, ob;
    if (PyObject_GetBuffer(xo, &xb, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(oo, &ob, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&xb);
        return NULL;
    }
    PyObject *result = NULL;
    const char *xf = xb.format ? xb.format : "B", *of = ob.format ? ob.format : "B";
    int f64 = strcmp(xf, "d") == 0;
    if (!(f64 || strcmp(xf, "f") == 0) || strcmp(xf, of) != 0 || xb.len != ob.len) {
        PyErr_Format(PyExc_ValueError,
                     "%s: x and out must be float32 or float64 of one format and size", name);
    } else {
        Py_ssize_t n = xb.len / xb.itemsize;
        Py_BEGIN_ALLOW_THREADS
        ew_threads((const char *)xb.buf, (char *)ob.buf, n, f64, mode, threads, chunk);
        Py_END_ALLOW_THREADS
        Py_INCREF(Py_None);
        result = Py_None;
    }
    PyBuffer_Release(&xb);
    PyBuffer_Release(&ob);
    return result;
}

static PyObject *ck_sigmoid(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *xo, *oo;
    int threads = 1;
    Py_ssize_t chunk = 1;
    if (!PyArg_ParseTuple(args, "OO|in:sigmoid", &xo, &oo, &threads, &chunk))
        return NULL;
    return ew_buffers(xo, oo, EW_SIGMOID, threads, chunk, "sigmoid");
}

PyDoc_STRVAR(log1p_exp_doc,
"log1p_exp(x, out, sign, threads=1, chunk=1) -> bool\n\n"
"log_sigmoid (sign -1: min(x, 0) - log1p(exp(-|x|))) or softplus (sign +1:\n"
"max(x, 0) + log1p(exp(-|x|))) of the C-contiguous float32 or float64\n"
"buffer x into out, in float64, as sigmoid(). Only with the AVX-512\n"
"kernel: returns False, writing nothing, where it is not in use.");

static PyObject *ck_log1p_exp(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *xo, *oo, *r;
    int sign, threads = 1;
    Py_ssize_t chunk = 1;
    if (!PyArg_ParseTuple(args, "OOi|in:log1p_exp", &xo, &oo, &sign, &threads, &chunk))
        return NULL;
    if (sign != 1 && sign != -1) {
        PyErr_SetString(PyExc_ValueError, "log1p_exp: sign must be 1 or -1");
        return NULL;
    }
    if (!use_avx512)
        Py_RETURN_FALSE;
    r = ew_buffers(xo, oo, sign < 0 ? EW_LOG_SIGMOID : EW_SOFTPLUS, threads, chunk, "log1p_exp");
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_TRUE;
}

/* ------------------------------------------------------------------------
 * Transparent huge pages for the outputs of the by-address entry points
 * (*_at: torch tensors, which torch's CPU allocator takes from malloc):
 * where one is HUGE_BYTES or more, its whole pages are advised
 * MADV_HUGEPAGE before the kernel first writes them, as NumPy advises each
 * array of 4 MiB or more (numpy/_core/src/multiarray/alloc.c). An output
 * of more than 32 MiB is a fresh mmap() on every call (glibc's largest
 * threshold for reusing freed memory), and on the VM measured (AMD Zen 4,
 * 4 KiB pages) its page faults cost more than the arithmetic: a float32
 * softmax of 1024x32768 (128 MiB) took 63 ms into a tensor from
 * torch.empty_like, 26 ms into a NumPy array. The advice changes no value
 * and is only a hint (the kernel may decline it); it follows NumPy's
 * switch (hugepages(), set from np._core.multiarray._get_madvise_hugepage
 * by the torch path), and is not given where the platform has none. */
#define HUGE_BYTES ((size_t)4 << 20)
static int advise_huge = 1;

static void advise_out(void *o, size_t bytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (!advise_huge || bytes < HUGE_BYTES)
        return;
    static uintptr_t page = 0; /* (16 or 64 KiB on some arm64 and ppc64 kernels) */
    if (page == 0) {
        long ps = sysconf(_SC_PAGESIZE);
        page = ps > 0 && (ps & (ps - 1)) == 0 ? (uintptr_t)ps : 4096;
    }
    uintptr_t a = ((uintptr_t)o + page - 1) & ~(page - 1);
    uintptr_t e = ((uintptr_t)o + bytes) & ~(page - 1);
    if (e > a)
        (void)madvise((void *)a, e - a, MADV_HUGEPAGE); /* (a hint: errors ignored) */
#else
    (void)o, (void)bytes;
#endif
}

static PyObject *ck_hugepages(PyObject *Py_UNUSED(self), PyObject *args)
{
    int on = -1;
    if (!PyArg_ParseTuple(args, "|p:hugepages", &on))
        return NULL;
    int prev = advise_huge;
    if (on >= 0)
        advise_huge = on;
    return PyBool_FromLong(prev);
}

PyDoc_STRVAR(sigmoid_at_doc,
"sigmoid_at(x, out, n, f64, threads=1, chunk=1, lanes=False) -> bool\n\n"
"sigmoid() on memory given by address: n contiguous float32 (f64 0) or\n"
"float64 values at x into out. The GIL is released. With lanes (float32\n"
"only), in float32 lanes, within 0.78 ULP (AVX-512 only: False, nothing\n"
"written, where that kernel is not in use).");

/* n values at xa into oa in mode, on this thread for small calls (the GIL
 * held), else over threads */
static void ew_at(unsigned long long xa, unsigned long long oa, Py_ssize_t n, int f64, int mode,
                  int threads, Py_ssize_t chunk)
{
    const char *x = (const char *)(uintptr_t)xa;
    char *o = (char *)(uintptr_t)oa;
    advise_out(o, (size_t)n * (f64 ? 8 : 4));
    if (n <= 4096) {
        ew_run(x, o, n, f64, mode);
    } else {
        Py_BEGIN_ALLOW_THREADS
        ew_threads(x, o, n, f64, mode, threads, chunk);
        Py_END_ALLOW_THREADS
    }
}

static PyObject *ck_sigmoid_at(PyObject *Py_UNUSED(self), PyObject *args)
{
    unsigned long long xa, oa;
    Py_ssize_t n, chunk = 1;
    int f64, threads = 1, lanes = 0;
    if (!PyArg_ParseTuple(args, "KKni|inp:sigmoid_at", &xa, &oa, &n, &f64, &threads, &chunk,
                          &lanes))
        return NULL;
    if (n < 0 || xa == 0 || oa == 0) {
        PyErr_SetString(PyExc_ValueError, "sigmoid_at: bad arguments");
        return NULL;
    }
    if (lanes && (f64 || !use_avx512))
        Py_RETURN_FALSE;
    ew_at(xa, oa, n, f64, lanes ? EW_SIGMOID_LANES : EW_SIGMOID, threads, chunk);
    Py_RETURN_TRUE;
}

PyDoc_STRVAR(log1p_exp_at_doc,
"log1p_exp_at(x, out, n, f64, sign, threads=1, chunk=1) -> bool\n\n"
"log1p_exp() on memory given by address: n contiguous float32 (f64 0) or\n"
"float64 values at x into out, as sigmoid_at(). Only with the AVX-512\n"
"kernel: returns False, writing nothing, where it is not in use.");

static PyObject *ck_log1p_exp_at(PyObject *Py_UNUSED(self), PyObject *args)
{
    unsigned long long xa, oa;
    Py_ssize_t n, chunk = 1;
    int f64, sign, threads = 1;
    if (!PyArg_ParseTuple(args, "KKnii|in:log1p_exp_at", &xa, &oa, &n, &f64, &sign, &threads,
                          &chunk))
        return NULL;
    if (n < 0 || xa == 0 || oa == 0 || (sign != 1 && sign != -1)) {
        PyErr_SetString(PyExc_ValueError, "log1p_exp_at: bad arguments");
        return NULL;
    }
    if (!use_avx512)
        Py_RETURN_FALSE;
    ew_at(xa, oa, n, f64, sign < 0 ? EW_LOG_SIGMOID : EW_SOFTPLUS, threads, chunk);
    Py_RETURN_TRUE;
}

/* ------------------------------------------------------------------------
 * The same rows on memory given by address (torch's Tensor.data_ptr()), on
 * the calling thread: for the small CPU tensors of _torch.py, where each
 * conversion to a NumPy view (about a microsecond each way) would cost as
 * much as the arithmetic. The caller keeps the tensors alive and checks
 * their dtype, layout and size; nothing here can check an address. */

/* NumPy's pairwise sum (numpy/_core/src/umath/loops_utils.h.src), so that
 * the reductions below give the bits np.add.reduce gives the NumPy path. */
static double pairwise_sum(const double *a, Py_ssize_t n)
{
    if (n < 8) {
        double res = 0.0;
        for (Py_ssize_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int k = 0; k < 8; k++)
            r[k] = a[k];
        Py_ssize_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int k = 0; k < 8; k++)
                r[k] += a[i + k];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    Py_ssize_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* A byte a row for rows_f64/rows_f32 (on the stack for small calls). */
#define AT_STACK 512
/* Calls of at most this many elements keep the GIL (releasing it costs
 * about as much as their arithmetic). */
#define AT_HOLD_GIL ((Py_ssize_t)1 << 14)

PyDoc_STRVAR(rows_at_doc,
"rows_at(x, row_stride, rows, n, out, mode, f64, threads=1, chunk=1) -> int\n\n"
"rows() on memory given by address: rows of n float32 (f64 0) or float64\n"
"values row_stride bytes apart at x, into the contiguous out (1 value a\n"
"row for mode 0, n for 1 and 2). Returns the number of rows left to the\n"
"caller (their output is not written), or raises MemoryError. With\n"
"threads > 1 (and openmp()), the rows in chunks of chunk rows over that\n"
"many OpenMP threads; else on the calling thread. The GIL is released\n"
"for calls of more than 2^14 elements.");

static PyObject *ck_rows_at(PyObject *Py_UNUSED(self), PyObject *args)
{
    unsigned long long xa, oa;
    Py_ssize_t rs, rows, n, chunk = 1;
    int mode, f64, threads = 1;
    if (!PyArg_ParseTuple(args, "KnnnKii|in:rows_at", &xa, &rs, &rows, &n, &oa, &mode, &f64,
                          &threads, &chunk))
        return NULL;
    if (rows < 0 || n < 1 || mode < LSE || mode > LOG_SOFTMAX || xa == 0 || oa == 0) {
        PyErr_SetString(PyExc_ValueError, "rows_at: bad arguments");
        return NULL;
    }
    unsigned char stack[AT_STACK];
    unsigned char *bad = rows <= AT_STACK ? stack : (unsigned char *)malloc((size_t)rows);
    if (bad == NULL)
        return PyErr_NoMemory();
    memset(bad, 0, (size_t)rows);
    const char *x = (const char *)(uintptr_t)xa;
    char *out = (char *)(uintptr_t)oa;
    if (mode != LSE)
        advise_out(out, (size_t)rows * (size_t)n * (f64 ? 8 : 4));
    PyThreadState *ts = rows * n > AT_HOLD_GIL ? PyEval_SaveThread() : NULL;
    Py_ssize_t nbad = rows_threads(x, rs, n, out, bad, 0, rows, mode, f64, threads, chunk);
    if (ts != NULL)
        PyEval_RestoreThread(ts);
    if (bad != stack)
        free(bad);
    if (nbad < 0)
        return PyErr_NoMemory();
    return PyLong_FromSsize_t(nbad);
}

PyDoc_STRVAR(ce_at_doc,
"cross_entropy_at(x, row_stride, rows, n, f64, target, ignore, reduction, out)\n"
"    -> bool\n\n"
"cross_entropy() with its reduction, on memory given by address: the rows\n"
"as in rows_at, the int64 targets (contiguous) at target, ignore an int or\n"
"None, reduction 0 (none: a value a row into out), 1 (sum) or 2 (mean: a\n"
"value into out), in x's dtype. The sum is NumPy's pairwise sum of the\n"
"float64 losses; the mean divides it by the samples not ignored (0 where\n"
"there are none). Returns False, writing nothing, where the caller must\n"
"decide: a row without a finite maximum, or a target out of range and not\n"
"ignored.");

/* A byte a row for the kernels' flags, zeroed: on the stack for up to
 * AT_STACK rows, else from calloc (NULL: out of memory). */
static unsigned char *zeroed_flags(unsigned char *stack, int64_t rows)
{
    if (rows <= AT_STACK)
        return memset(stack, 0, (size_t)(rows > 0 ? rows : 1));
    return (unsigned char *)calloc((size_t)rows, 1);
}

/* cross_entropy_at's work: 1 done, 0 left to the caller, -1 no memory.
 * With fix, nothing is left to the caller: the rows without a finite
 * maximum take special_row's rules, and a target out of range and not
 * ignored makes the sum or mean NaN (as the generic code's NaN loss, and
 * NaN in the mean's denominator). */
static int ce_reduce(const char *x, Py_ssize_t rs, Py_ssize_t rows, Py_ssize_t n, int f64,
                     const int64_t *t, int has_ignore, int64_t ignore, int reduction, char *out,
                     int fix)
{
    double stack[AT_STACK];
    unsigned char bstack[AT_STACK];
    double *loss = rows <= AT_STACK ? stack : (double *)malloc((size_t)rows * sizeof(double));
    unsigned char *bad = fix ? zeroed_flags(bstack, rows) : NULL;
    if (loss == NULL || (fix && bad == NULL)) {
        if (loss != stack)
            free(loss);
        if (bad != bstack)
            free(bad);
        return -1;
    }
    Py_ssize_t counts[3] = {0, 0, 0};
    if (f64)
        ce_f64(x, rs, n, t, loss, 0, rows, has_ignore, ignore, counts, bad);
    else
        ce_f32(x, rs, n, t, loss, 0, rows, has_ignore, ignore, counts, bad);
    if (fix && counts[0]) { /* (they count: in range, not ignored) */
        special_ce(x, rs, n, t, loss, bad, rows, f64);
        counts[2] += counts[0];
        counts[0] = 0;
    }
    int ok = counts[0] == 0 && (counts[1] == 0 || fix);
    if (ok) {
        if (reduction == 0) {
            for (Py_ssize_t i = 0; i < rows; i++) {
                if (f64)
                    ((double *)out)[i] = loss[i];
                else
                    ((float *)out)[i] = (float)loss[i];
            }
        } else {
            /* (0.0 +: np.add.reduce starts from its identity, so that a sum
             * of -0.0 losses, all ignored, is +0.0 as on the other paths) */
            double total = 0.0 + pairwise_sum(loss, rows);
            if (reduction == 2)
                total = counts[1] ? NAN : counts[2] ? total / (double)counts[2] : 0.0;
            if (f64)
                *(double *)out = total;
            else
                *(float *)out = (float)total;
        }
    }
    if (loss != stack)
        free(loss);
    if (bad != bstack)
        free(bad);
    return ok;
}

static PyObject *ck_cross_entropy_at(PyObject *Py_UNUSED(self), PyObject *args)
{
    unsigned long long xa, ta, oa;
    Py_ssize_t rs, rows, n;
    int f64, reduction, has_ignore;
    int64_t ignore;
    PyObject *io;
    if (!PyArg_ParseTuple(args, "KnnniKOiK:cross_entropy_at", &xa, &rs, &rows, &n, &f64, &ta,
                          &io, &reduction, &oa))
        return NULL;
    if (rows < 0 || n < 1 || reduction < 0 || reduction > 2 || xa == 0 || oa == 0 ||
        (ta == 0 && rows > 0)) {
        PyErr_SetString(PyExc_ValueError, "cross_entropy_at: bad arguments");
        return NULL;
    }
    if (parse_ignore(io, &has_ignore, &ignore) < 0)
        return NULL;
    int ok = ce_reduce((const char *)(uintptr_t)xa, rs, rows, n, f64,
                       (const int64_t *)(uintptr_t)ta, has_ignore, ignore, reduction,
                       (char *)(uintptr_t)oa, 0);
    if (ok < 0)
        return PyErr_NoMemory();
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(ce_reduce_doc,
"cross_entropy_reduce(x, target, ignore, reduction, out) -> bool\n\n"
"cross_entropy_at on buffers, on the calling thread: x 2-D float32 or\n"
"float64 with unit stride along its rows, target int64 C-contiguous (a\n"
"value a row), out C-contiguous in x's format (a value a row for\n"
"reduction 0, else one).");

static PyObject *ck_cross_entropy_reduce(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *xo, *to, *io, *oo;
    int reduction, has_ignore;
    int64_t ignore;
    if (!PyArg_ParseTuple(args, "OOOiO:cross_entropy_reduce", &xo, &to, &io, &reduction, &oo))
        return NULL;
    if (reduction < 0 || reduction > 2) {
        PyErr_SetString(PyExc_ValueError, "cross_entropy_reduce: reduction must be 0, 1 or 2");
        return NULL;
    }
    if (parse_ignore(io, &has_ignore, &ignore) < 0)
        return NULL;
    Py_buffer xb, tb, ob;
    if (ce_buffers(xo, to, oo, &xb, &tb, &ob) < 0)
        return NULL;
    PyObject *result = NULL;
    const char *xf = xb.format ? xb.format : "B", *of = ob.format ? ob.format : "B";
    const char *tf = tb.format ? tb.format : "B";
    int f64 = strcmp(xf, "d") == 0;
    Py_ssize_t rows = xb.ndim == 2 ? xb.shape[0] : 0, n = xb.ndim == 2 ? xb.shape[1] : 0;
    int t64 = tb.itemsize == 8 && (strcmp(tf, "l") == 0 || strcmp(tf, "q") == 0);
    if (xb.ndim != 2 || !(f64 || strcmp(xf, "f") == 0) || xb.strides[1] != xb.itemsize ||
        n < 1) {
        PyErr_SetString(PyExc_ValueError, "cross_entropy_reduce: x must be a 2-D float32 or "
                                          "float64 buffer with unit stride along its rows");
    } else if (!t64 || tb.len != rows * 8) {
        PyErr_SetString(PyExc_ValueError, "cross_entropy_reduce: target must be int64, a "
                                          "value a row");
    } else if (strcmp(of, xf) != 0 || ob.len != (reduction == 0 ? rows : 1) * xb.itemsize) {
        PyErr_SetString(PyExc_ValueError, "cross_entropy_reduce: out has the wrong dtype or "
                                          "size");
    } else {
        int ok = ce_reduce((const char *)xb.buf, xb.strides[0], rows, n, f64,
                           (const int64_t *)tb.buf, has_ignore, ignore, reduction,
                           (char *)ob.buf, 0);
        result = ok < 0 ? PyErr_NoMemory() : PyBool_FromLong(ok);
    }
    PyBuffer_Release(&xb);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&ob);
    return result;
}

/* ------------------------------------------------------------------------
 * XLA FFI handlers: the same rows, as custom calls of JAX programs on the
 * CPU (xact/_fastpaths/_jax.py registers them with jax.ffi). XLA hands the
 * handler dense row-major buffers; the rows are the last axis, every
 * leading axis (a vmap batch included) counts rows. The attributes are
 * integer scalars, computed from the static shapes when the call is
 * traced. Errors (which only a wrong call from _jax.py could cause) go
 * back to XLA, which raises them in Python. */

static xact_ffi_error *ffi_error(const xact_ffi_call_frame *f, xact_ffi_error_code code,
                                 const char *msg)
{
    xact_ffi_error_create_args a;
    a.struct_size = XACT_FFI_STRUCT_SIZE(xact_ffi_error_create_args, errc);
    a.extension_start = NULL;
    a.message = msg;
    a.errc = code;
    return f->api->error_create(&a);
}

/* 0 where there is nothing to compute: a query of the handler's metadata
 * (the API version it was built for, no traits), or a stage other than
 * execution. */
static int ffi_executes(xact_ffi_call_frame *f)
{
    xact_ffi_extension *ext = f->extension_start;
    if (ext != NULL && ext->type == XACT_FFI_EXTENSION_METADATA) {
        xact_ffi_metadata *md = ((xact_ffi_metadata_extension *)ext)->metadata;
        md->api_version.struct_size = XACT_FFI_STRUCT_SIZE(xact_ffi_api_version, minor_version);
        md->api_version.extension_start = NULL;
        md->api_version.major_version = XACT_FFI_API_MAJOR;
        md->api_version.minor_version = XACT_FFI_API_MINOR;
        md->traits = 0;
        return 0;
    }
    return f->stage == XACT_FFI_STAGE_EXECUTE;
}

/* The integer scalar attribute called name into *v (0: there is none). */
static int ffi_int_attr(const xact_ffi_call_frame *f, const char *name, int64_t *v)
{
    size_t len = strlen(name);
    for (int64_t i = 0; i < f->attrs.size; i++) {
        const xact_ffi_bytes *s = f->attrs.names[i];
        if (f->attrs.types[i] != XACT_FFI_ATTR_SCALAR || s->len != len ||
            memcmp(s->ptr, name, len) != 0)
            continue;
        const xact_ffi_scalar *sc = (const xact_ffi_scalar *)f->attrs.attrs[i];
        if (sc->dtype == XACT_FFI_S32) {
            *v = *(const int32_t *)sc->value;
            return 1;
        }
        if (sc->dtype == XACT_FFI_S64) {
            *v = *(const int64_t *)sc->value;
            return 1;
        }
        return 0;
    }
    return 0;
}

/* The buffers of a call: nargs arguments, then nrets results. */
static int ffi_buffers(const xact_ffi_call_frame *f, int nargs, int nrets,
                       xact_ffi_buffer **b)
{
    if (f->args.size != nargs || f->rets.size != nrets)
        return 0;
    for (int i = 0; i < nargs + nrets; i++) {
        const xact_ffi_args *list = i < nargs ? &f->args : &f->rets;
        int j = i < nargs ? i : i - nargs;
        if (list->types[j] != 1) /* a buffer */
            return 0;
        b[i] = (xact_ffi_buffer *)list->args[j];
    }
    return 1;
}

static int64_t ffi_count(const xact_ffi_buffer *b, int64_t skip_last)
{
    int64_t c = 1;
    for (int64_t d = 0; d < b->rank - skip_last; d++)
        c *= b->dims[d];
    return c;
}

/* Rows over XLA's thread pool. Inside an XLA program the rows are not
 * split over an OpenMP team: its threads spin for a while after each call
 * and slow the XLA operations that follow (measured: jax.nn.softmax 3x
 * slower between two of our calls). They are split over XLA's own pool
 * instead, as _parallel.share does over Python threads: the caller and
 * threads-1 tasks take chunks of rows in turn, and the caller waits only
 * for chunks under way. A task that starts after the last chunk was taken
 * (XLA may run it late, or never while the caller runs) touches nothing
 * but the job, which the last of its users frees. */
typedef struct {
    int refs;                /* the caller and each scheduled task */
    Py_ssize_t next, done;   /* chunks handed out, and finished */
    Py_ssize_t nchunks, chunk, rows; /* (elementwise: rows are elements) */
    int ce, ew, f64, mode, has_ignore;
    fenv_t env;              /* elementwise: the caller's, which tasks take */
    const char *x;
    Py_ssize_t rs, n;
    char *out;               /* rows: out; cross_entropy: the float64 losses */
    unsigned char *bad;
    const int64_t *target;
    int64_t ignore;
    Py_ssize_t oom;
} pool_job;

static void pool_job_release(pool_job *j)
{
    if (__atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(j);
}

/* XLA runs its CPU threads with subnormals flushed to zero (FTZ and DAZ
 * set in MXCSR on x86): the kernel, which produces and reads subnormals as
 * NumPy does, runs each call and task in the default floating-point
 * environment, and puts XLA's back after. */
typedef struct {
    fenv_t env;
    int saved;
} fp_env;

/* Saves this thread's environment in e and sets to (FE_DFL_ENV, or another
 * thread's). */
static void fp_env_enter(fp_env *e, const fenv_t *to)
{
    e->saved = fegetenv(&e->env) == 0;
    if (e->saved)
        fesetenv(to);
}

static void fp_env_leave(fp_env *e)
{
    if (e->saved)
        fesetenv(&e->env);
}

static void pool_job_work(pool_job *j)
{
    for (;;) {
        Py_ssize_t c = __atomic_fetch_add(&j->next, 1, __ATOMIC_ACQ_REL);
        if (c >= j->nchunks)
            return;
        Py_ssize_t a = c * j->chunk, b = a + j->chunk < j->rows ? a + j->chunk : j->rows;
        if (j->ew) {
            Py_ssize_t isz = j->f64 ? 8 : 4;
            ew_run_xla(j->x + a * isz, j->out + a * isz, b - a, j->rows, j->f64, j->mode);
        } else if (j->ce) {
            Py_ssize_t k[3] = {0, 0, 0};
            if (j->f64)
                ce_f64(j->x, j->rs, j->n, j->target, (double *)j->out, a, b, j->has_ignore,
                       j->ignore, k, j->bad);
            else
                ce_f32(j->x, j->rs, j->n, j->target, (double *)j->out, a, b, j->has_ignore,
                       j->ignore, k, j->bad);
        } else {
            Py_ssize_t nb = j->f64 ? rows_f64(j->x, j->rs, j->n, j->out, j->bad, a, b, j->mode)
                                   : rows_f32(j->x, j->rs, j->n, j->out, j->bad, a, b, j->mode,
                                              streams(j->rows, j->n, j->f64, j->mode));
            if (nb < 0)
                __atomic_fetch_add(&j->oom, 1, __ATOMIC_RELAXED);
        }
        __atomic_fetch_add(&j->done, 1, __ATOMIC_ACQ_REL);
    }
}

static void pool_job_task(void *data)
{
    pool_job *j = (pool_job *)data;
    fp_env e;
    fp_env_enter(&e, j->ew ? &j->env : FE_DFL_ENV);
    pool_job_work(j);
    fp_env_leave(&e);
    pool_job_release(j);
}

/* Runs the job (its fields set, refs and counters 0) with up to threads - 1
 * tasks on XLA's pool; frees it. Returns 0, or -1 where a chunk ran out of
 * memory. */
/* Pool tasks scheduled so far (for the tests: that a call used the pool). */
static Py_ssize_t pool_tasks_scheduled = 0;

/* Whether this XLA passes a thread pool's scheduler. (The API struct grew
 * the field in version 0.1, but for a while XLA reported a struct_size
 * that stopped before it: those take the OpenMP team instead.) */
static int ffi_has_pool(const xact_ffi_call_frame *f)
{
    const xact_ffi_api *api = f->api;
    return api->struct_size >= XACT_FFI_STRUCT_SIZE(xact_ffi_api, thread_pool_schedule) &&
           api->thread_pool_schedule != NULL;
}

/* Whether a call splits its rows over XLA's pool: more than one thread
 * asked for, more than one chunk, and a pool. Otherwise the rows go to
 * rows_threads / ce_threads (one thread, or an OpenMP team where XLA has
 * no pool). */
static int ffi_use_pool(const xact_ffi_call_frame *f, int64_t threads, int64_t rows,
                        int64_t chunk)
{
    return threads > 1 && chunk < rows && ffi_has_pool(f);
}

static int pool_job_run(const xact_ffi_call_frame *f, pool_job *j, int threads)
{
    const xact_ffi_api *api = f->api;
    int has_pool = ffi_has_pool(f);
    j->nchunks = (j->rows + j->chunk - 1) / j->chunk;
    j->refs = 1;
    for (int t = 1; has_pool && t < threads && t < j->nchunks; t++) {
        __atomic_add_fetch(&j->refs, 1, __ATOMIC_ACQ_REL);
        xact_ffi_schedule_args a;
        a.struct_size = XACT_FFI_STRUCT_SIZE(xact_ffi_schedule_args, data);
        a.extension_start = NULL;
        a.ctx = f->ctx;
        a.task = pool_job_task;
        a.data = j;
        xact_ffi_error *err = api->thread_pool_schedule(&a);
        if (err != NULL) { /* no pool here: the caller does the rest */
            xact_ffi_error_destroy_args d;
            d.struct_size = XACT_FFI_STRUCT_SIZE(xact_ffi_error_destroy_args, error);
            d.extension_start = NULL;
            d.error = err;
            api->error_destroy(&d);
            __atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL);
            break;
        }
        __atomic_add_fetch(&pool_tasks_scheduled, 1, __ATOMIC_RELAXED);
    }
    pool_job_work(j);
    /* Every chunk is handed out: wait for those under way (a few
     * hundred microseconds at most), not for tasks that have not started. */
    while (__atomic_load_n(&j->done, __ATOMIC_ACQUIRE) < j->nchunks)
        sched_yield();
    int rc = __atomic_load_n(&j->oom, __ATOMIC_ACQUIRE) ? -1 : 0;
    pool_job_release(j);
    return rc;
}

/* rows: x (float32/float64, the rows along its last axis, of at least one
 * entry) -> out (x's dtype: a value a row for mode 0, else x's shape).
 * Attributes: mode (0 logsumexp, 1 softmax, 2 log_softmax), threads, chunk.
 * The rows the kernel leaves to the caller take special_row's rules
 * (the generic code's, for rows without a finite maximum), so that the
 * program needs no branch of its own for them: a jax.lax.cond around the
 * generic code cost 3.5 to 4 us a call at 32x10, twice the kernel's time. */
static xact_ffi_error *ffi_rows_run(xact_ffi_call_frame *f)
{
    xact_ffi_buffer *b[2];
    int64_t mode, threads, chunk;
    if (!ffi_buffers(f, 1, 1, b) || !ffi_int_attr(f, "mode", &mode) ||
        !ffi_int_attr(f, "threads", &threads) || !ffi_int_attr(f, "chunk", &chunk))
        return ffi_error(f, XACT_FFI_INVALID_ARGUMENT,
                         "xact_rows: takes one buffer, returns one, and needs the attributes "
                         "mode, threads and chunk");
    const xact_ffi_buffer *x = b[0], *out = b[1];
    int f64 = x->dtype == XACT_FFI_F64;
    if (x->rank < 1 || !(f64 || x->dtype == XACT_FFI_F32) || out->dtype != x->dtype ||
        mode < LSE || mode > LOG_SOFTMAX)
        return ffi_error(f, XACT_FFI_INVALID_ARGUMENT,
                         "xact_rows: x must be float32 or float64 with at least one axis, out "
                         "of its dtype, and mode 0, 1 or 2");
    int64_t rows = ffi_count(x, 1), n = x->dims[x->rank - 1];
    if (ffi_count(out, 0) != rows * (mode == LSE ? 1 : n) || (n == 0 && rows > 0))
        return ffi_error(f, XACT_FFI_INVALID_ARGUMENT,
                         "xact_rows: out has a wrong size, or the rows are empty");
    if (rows == 0)
        return NULL;
    unsigned char stack[AT_STACK];
    unsigned char *bad = zeroed_flags(stack, rows);
    if (bad == NULL)
        return ffi_error(f, XACT_FFI_RESOURCE_EXHAUSTED, "xact_rows: out of memory");
    const char *xd = (const char *)x->data;
    Py_ssize_t rs = n * (f64 ? 8 : 4);
    int rc = -1; /* (0 done, -1 out of memory) */
    if (chunk < 1)
        chunk = 1;
    if (!ffi_use_pool(f, threads, rows, chunk)) {
        rc = rows_threads(xd, rs, n, (char *)out->data, bad, 0, rows, (int)mode, f64,
                          (int)threads, chunk) < 0 ? -1 : 0;
    } else {
        pool_job *j = (pool_job *)calloc(1, sizeof(pool_job));
        if (j != NULL) {
            j->rows = rows, j->chunk = chunk, j->f64 = f64, j->mode = (int)mode;
            j->x = xd, j->rs = rs, j->n = n;
            j->out = (char *)out->data, j->bad = bad;
            rc = pool_job_run(f, j, (int)threads);
        }
    }
    if (rc == 0)
        special_rows(xd, rs, n, (char *)out->data, bad, rows, (int)mode, f64);
    if (bad != stack)
        free(bad);
    if (rc < 0)
        return ffi_error(f, XACT_FFI_RESOURCE_EXHAUSTED, "xact_rows: out of memory");
    return NULL;
}

/* int32 targets as int64, in a new buffer (NULL: out of memory); the
 * kernel reads int64. */
static int64_t *ffi_widen(const xact_ffi_buffer *t, int64_t rows)
{
    int64_t *wide = (int64_t *)malloc((size_t)(rows > 0 ? rows : 1) * sizeof(int64_t));
    if (wide != NULL)
        for (int64_t i = 0; i < rows; i++)
            wide[i] = ((const int32_t *)t->data)[i];
    return wide;
}

/* cross_entropy: logits (float32/float64, (..., C): the rows along the last
 * axis, of at least one entry) and target (int32/int64, a class index a
 * row) -> loss (the logits' dtype, a value a row: -0.0 where ignored, NaN
 * where the target is out of range; the rows without a finite maximum by
 * special_row's rules). Attributes: has_ignore, ignore, threads, chunk. */
static xact_ffi_error *ffi_cross_entropy_run(xact_ffi_call_frame *f)
{
    xact_ffi_buffer *b[3];
    int64_t has_ignore, ignore, threads, chunk;
    if (!ffi_buffers(f, 2, 1, b) || !ffi_int_attr(f, "has_ignore", &has_ignore) ||
        !ffi_int_attr(f, "ignore", &ignore) || !ffi_int_attr(f, "threads", &threads) ||
        !ffi_int_attr(f, "chunk", &chunk))
        return ffi_error(f, XACT_FFI_INVALID_ARGUMENT,
                         "xact_cross_entropy: takes two buffers, returns one, and needs the "
                         "attributes has_ignore, ignore, threads and chunk");
    const xact_ffi_buffer *x = b[0], *t = b[1], *loss = b[2];
    int f64 = x->dtype == XACT_FFI_F64;
    int t64 = t->dtype == XACT_FFI_S64;
    if (x->rank < 1 || !(f64 || x->dtype == XACT_FFI_F32) || !(t64 || t->dtype == XACT_FFI_S32) ||
        loss->dtype != x->dtype)
        return ffi_error(f, XACT_FFI_INVALID_ARGUMENT,
                         "xact_cross_entropy: logits must be float32 or float64, target int32 "
                         "or int64, and loss of the logits' dtype");
    int64_t rows = ffi_count(x, 1), n = x->dims[x->rank - 1];
    if (ffi_count(t, 0) != rows || ffi_count(loss, 0) != rows || (n == 0 && rows > 0))
        return ffi_error(f, XACT_FFI_INVALID_ARGUMENT,
                         "xact_cross_entropy: target and loss need a value a row of logits, "
                         "and the rows an entry at least");
    if (rows == 0)
        return NULL;
    unsigned char stack[AT_STACK];
    unsigned char *bad = zeroed_flags(stack, rows);
    const int64_t *target = (const int64_t *)t->data;
    int64_t *wide = NULL;
    double *l64 = f64 ? (double *)loss->data : NULL;
    if (!t64)
        target = wide = ffi_widen(t, rows);
    if (!f64)
        l64 = (double *)malloc((size_t)rows * sizeof(double));
    pool_job *j = NULL;
    int pool = ffi_use_pool(f, threads, rows, chunk < 1 ? 1 : chunk);
    if (pool)
        j = (pool_job *)calloc(1, sizeof(pool_job));
    if (bad == NULL || target == NULL || l64 == NULL || (pool && j == NULL)) {
        if (bad != stack)
            free(bad);
        free(wide);
        if (!f64)
            free(l64);
        free(j);
        return ffi_error(f, XACT_FFI_RESOURCE_EXHAUSTED, "xact_cross_entropy: out of memory");
    }
    if (chunk < 1)
        chunk = 1;
    const char *xd = (const char *)x->data;
    Py_ssize_t rs = n * (f64 ? 8 : 4);
    if (!pool) {
        Py_ssize_t counts[3] = {0, 0, 0};
        ce_threads(xd, rs, n, target, l64, 0, rows, has_ignore != 0, ignore, counts, bad, f64,
                   (int)threads, chunk);
    } else {
        j->ce = 1, j->rows = rows, j->chunk = chunk, j->f64 = f64;
        j->x = xd, j->rs = rs, j->n = n;
        j->out = (char *)l64, j->bad = bad, j->target = target;
        j->has_ignore = has_ignore != 0, j->ignore = ignore;
        pool_job_run(f, j, (int)threads); /* (no allocation in a cross_entropy chunk) */
    }
    special_ce(xd, rs, n, target, l64, bad, rows, f64);
    if (!f64) {
        float *lo = (float *)loss->data;
        for (int64_t i = 0; i < rows; i++)
            lo[i] = (float)l64[i];
        free(l64);
    }
    if (bad != stack)
        free(bad);
    free(wide);
    return NULL;
}

/* cross_entropy of small 2-D logits (rows of at least one entry) with its
 * reduction (sum 1, mean 2), as cross_entropy_at computes it (on the
 * calling thread), into the scalar out; the rows without a finite maximum
 * by special_row's rules, and NaN where a target is out of range and not
 * ignored. For small batches, where each operation of the program costs
 * about a microsecond: the reduction of the losses and its checks are then
 * not operations of their own. */
static xact_ffi_error *ffi_ce_reduce_run(xact_ffi_call_frame *f)
{
    xact_ffi_buffer *b[3];
    int64_t has_ignore, ignore, reduction;
    if (!ffi_buffers(f, 2, 1, b) || !ffi_int_attr(f, "has_ignore", &has_ignore) ||
        !ffi_int_attr(f, "ignore", &ignore) || !ffi_int_attr(f, "reduction", &reduction))
        return ffi_error(f, XACT_FFI_INVALID_ARGUMENT,
                         "xact_cross_entropy_reduce: takes two buffers, returns one, and needs "
                         "the attributes has_ignore, ignore and reduction");
    const xact_ffi_buffer *x = b[0], *t = b[1], *out = b[2];
    int f64 = x->dtype == XACT_FFI_F64;
    int t64 = t->dtype == XACT_FFI_S64;
    if (x->rank != 2 || !(f64 || x->dtype == XACT_FFI_F32) ||
        !(t64 || t->dtype == XACT_FFI_S32) || out->dtype != x->dtype ||
        ffi_count(out, 0) != 1 || ffi_count(t, 0) != x->dims[0] ||
        (reduction != 1 && reduction != 2) || x->dims[0] < 1 || x->dims[1] < 1)
        return ffi_error(f, XACT_FFI_INVALID_ARGUMENT,
                         "xact_cross_entropy_reduce: logits must be 2-D float32 or float64, "
                         "not empty, target int32 or int64 (a value a row), out a scalar of "
                         "the logits' dtype, and reduction 1 or 2");
    int64_t rows = x->dims[0], n = x->dims[1];
    int64_t *wide = t64 ? NULL : ffi_widen(t, rows);
    if (!t64 && wide == NULL)
        return ffi_error(f, XACT_FFI_RESOURCE_EXHAUSTED, "xact_cross_entropy_reduce: out of memory");
    const int64_t *target = t64 ? (const int64_t *)t->data : wide;
    int ok = ce_reduce((const char *)x->data, n * (f64 ? 8 : 4), rows, n, f64, target,
                       has_ignore != 0, ignore, (int)reduction, (char *)out->data, 1);
    free(wide);
    if (ok < 0)
        return ffi_error(f, XACT_FFI_RESOURCE_EXHAUSTED, "xact_cross_entropy_reduce: out of memory");
    return NULL;
}

/* The handlers: run's work (at the execution stage) in the default
 * floating-point environment. */
static xact_ffi_error *ffi_handle(xact_ffi_call_frame *f,
                                  xact_ffi_error *(*run)(xact_ffi_call_frame *))
{
    if (!ffi_executes(f))
        return NULL;
    fp_env e;
    fp_env_enter(&e, FE_DFL_ENV);
    xact_ffi_error *err = run(f);
    fp_env_leave(&e);
    return err;
}

static xact_ffi_error *ffi_rows(xact_ffi_call_frame *f) { return ffi_handle(f, ffi_rows_run); }

static xact_ffi_error *ffi_cross_entropy(xact_ffi_call_frame *f)
{
    return ffi_handle(f, ffi_cross_entropy_run);
}

static xact_ffi_error *ffi_ce_reduce(xact_ffi_call_frame *f)
{
    return ffi_handle(f, ffi_ce_reduce_run);
}

/* elementwise: x (float32/float64) -> out (x's dtype and size).
 * Attributes: mode (0 sigmoid, 1 log_sigmoid, 2 softplus), threads (at
 * most), chunk (elements, at most). As the NumPy path computes them (a
 * float32 sigmoid of more than EW_LANES elements: as the torch path's large
 * tensors), but in XLA's floating-point environment: subnormal results
 * flushed to 0 as XLA's own operations flush them, so that a JAX program
 * gives the same zeros whatever its size. The elements are split as
 * _parallel.plan(n, 1) splits them, on the n of this call (under vmap,
 * more than the traced call's): a thread for each 2 chunks, at most
 * threads, chunks of at most chunk and at least two per thread, over
 * XLA's pool, as the rows of xact_rows, each task in the caller's
 * environment; where XLA has no pool, on the calling thread (an OpenMP
 * team's threads would not be in XLA's environment). Without the AVX-512
 * kernel, log_sigmoid and softplus run libm's functions. A custom call is
 * one opaque operation: XLA's loop for the generic sigmoid ran three
 * times slower than jax.nn.sigmoid's in spells at 32x10, and XLA's float64
 * exp and log1p took 6 times the kernel's time on large arrays. */
static xact_ffi_error *ffi_elementwise(xact_ffi_call_frame *f)
{
    if (!ffi_executes(f))
        return NULL;
    xact_ffi_buffer *b[2];
    int64_t mode, threads, chunk;
    if (!ffi_buffers(f, 1, 1, b) || !ffi_int_attr(f, "mode", &mode) ||
        !ffi_int_attr(f, "threads", &threads) || !ffi_int_attr(f, "chunk", &chunk))
        return ffi_error(f, XACT_FFI_INVALID_ARGUMENT,
                         "xact_elementwise: takes one buffer, returns one, and needs the "
                         "attributes mode, threads and chunk");
    const xact_ffi_buffer *x = b[0], *o = b[1];
    int f64 = x->dtype == XACT_FFI_F64;
    int64_t n = ffi_count(x, 0);
    if (!(f64 || x->dtype == XACT_FFI_F32) || o->dtype != x->dtype || ffi_count(o, 0) != n ||
        mode < EW_SIGMOID || mode > EW_SOFTPLUS || threads < 1 || chunk < 1)
        return ffi_error(f, XACT_FFI_INVALID_ARGUMENT,
                         "xact_elementwise: x must be float32 or float64, out of its dtype and "
                         "size, mode 0, 1 or 2, and threads and chunk positive");
    int64_t nt = n / (2 * chunk); /* (_parallel: MIN_ELEMENTS = 2 CHUNK_ELEMENTS) */
    nt = nt < threads ? nt : threads;
    if (nt > 1) {
        int64_t per = (n + 2 * nt - 1) / (2 * nt);
        chunk = per < chunk ? per : chunk;
    }
    pool_job *j = NULL;
    if (ffi_use_pool(f, nt, n, chunk))
        j = (pool_job *)calloc(1, sizeof(pool_job));
    if (j == NULL || fegetenv(&j->env) != 0) { /* (also: out of memory) */
        free(j);
        ew_run_xla((const char *)x->data, (char *)o->data, n, n, f64, (int)mode);
        return NULL;
    }
    j->ew = 1, j->rows = n, j->chunk = chunk, j->f64 = f64, j->mode = (int)mode;
    j->x = (const char *)x->data, j->out = (char *)o->data;
    pool_job_run(f, j, (int)nt); /* (elementwise chunks allocate nothing) */
    return NULL;
}

static PyObject *ck_xla_pool_tasks(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(args))
{
    return PyLong_FromSsize_t(__atomic_load_n(&pool_tasks_scheduled, __ATOMIC_RELAXED));
}

/* A PyCapsule of each handler, for jax.ffi.register_ffi_target. */
static PyObject *ck_xla_handlers(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(args))
{
    PyObject *rows = PyCapsule_New((void *)ffi_rows, NULL, NULL);
    PyObject *ce = rows ? PyCapsule_New((void *)ffi_cross_entropy, NULL, NULL) : NULL;
    PyObject *cr = ce ? PyCapsule_New((void *)ffi_ce_reduce, NULL, NULL) : NULL;
    PyObject *ew = cr ? PyCapsule_New((void *)ffi_elementwise, NULL, NULL) : NULL;
    PyObject *d = ew ? Py_BuildValue("{sOsOsOsO}", "xact_rows", rows, "xact_cross_entropy", ce,
                                     "xact_cross_entropy_reduce", cr, "xact_elementwise", ew)
                     : NULL;
    Py_XDECREF(rows);
    Py_XDECREF(ce);
    Py_XDECREF(cr);
    Py_XDECREF(ew);
    return d;
}

/* For the tests: the kernels' exp on each float64 of x, into out. */
static void exp_portable(const double *x, double *o, Py_ssize_t n, int careful)
{
    const uint64_t *T = TAB_PTR;
    for (Py_ssize_t j = 0; j < n; j++) {
        double v = x[j];
        if (careful)
            o[j] = xexp(T, v < -1100.0 ? -1100.0 : v > 0.0 ? 0.0 : v, 1);
        else
            o[j] = xexp(T, v < -700.0 ? -700.0 : v > 0.0 ? 0.0 : v, 0);
    }
}

/* kind 0 and 1: the portable exp (1: careful, with subnormal results);
 * 2 and 3: the float32 and the float64 AVX-512 kernel's, on x clamped to
 * [-700, 0]. */
static PyObject *exp_into(PyObject *xo, PyObject *oo, int kind, const char *name)
{
    Py_buffer xb, ob;
    if (PyObject_GetBuffer(xo, &xb, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(oo, &ob, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&xb);
        return NULL;
    }
    PyObject *result = NULL;
    if (!xb.format || !ob.format || strcmp(xb.format, "d") || strcmp(ob.format, "d") ||
        ob.len != xb.len) {
        PyErr_Format(PyExc_ValueError, "%s: x and out must be float64 of one size", name);
    } else {
        if (kind == 2)
            xact_exp_avx512((const double *)xb.buf, (double *)ob.buf, xb.len / 8);
        else if (kind == 3)
            xact_exp_f64_avx512((const double *)xb.buf, (double *)ob.buf, xb.len / 8);
        else
            exp_portable((const double *)xb.buf, (double *)ob.buf, xb.len / 8, kind);
        Py_INCREF(Py_None);
        result = Py_None;
    }
    PyBuffer_Release(&xb);
    PyBuffer_Release(&ob);
    return result;
}

static PyObject *ck_exp(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *xo, *oo;
    int careful;
    if (!PyArg_ParseTuple(args, "OOp:exp", &xo, &oo, &careful))
        return NULL;
    return exp_into(xo, oo, careful, "exp");
}

static PyObject *ck_exp16(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *xo, *oo;
    int full = 0;
    if (!PyArg_ParseTuple(args, "OO|p:exp16", &xo, &oo, &full))
        return NULL;
    if (!xact_avx512_usable()) {
        PyErr_SetString(PyExc_RuntimeError, "exp16: this CPU has no AVX-512");
        return NULL;
    }
    return exp_into(xo, oo, full ? 3 : 2, "exp16");
}

PyDoc_STRVAR(set_isa_doc,
"set_isa(name) -> str\n\n"
"Which kernels the rows take: \"avx512\" (the default where the CPU has\n"
"it), \"avx512-rows\" (AVX-512, but short float64 rows one at a time, not\n"
"eight side by side) or \"portable\"; returns the previous one. For the\n"
"tests, which run each.");

static PyObject *ck_set_isa(PyObject *Py_UNUSED(self), PyObject *args)
{
    const char *name;
    if (!PyArg_ParseTuple(args, "s:set_isa", &name))
        return NULL;
    const char *prev = !use_avx512 ? "portable" : small_rows ? "avx512" : "avx512-rows";
    int rows_only = strcmp(name, "avx512-rows") == 0;
    if (strcmp(name, "avx512") == 0 || rows_only) {
        if (!xact_avx512_usable()) {
            PyErr_SetString(PyExc_ValueError, "set_isa: this CPU has no AVX-512");
            return NULL;
        }
        use_avx512 = 1;
        small_rows = !rows_only;
    } else if (strcmp(name, "portable") == 0) {
        use_avx512 = 0;
        small_rows = 1;
    } else {
        PyErr_Format(PyExc_ValueError, "set_isa: name must be \"avx512\", \"avx512-rows\" "
                                       "or \"portable\", got %R", PyTuple_GET_ITEM(args, 0));
        return NULL;
    }
    return PyUnicode_FromString(prev);
}

static PyObject *ck_isas(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(args))
{
    if (xact_avx512_usable())
        return Py_BuildValue("(sss)", "avx512", "avx512-rows", "portable");
    return Py_BuildValue("(s)", "portable");
}

static PyObject *ck_openmp(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(args))
{
    return PyBool_FromLong(omp_usable);
}

static PyMethodDef ck_methods[] = {
    {"openmp", ck_openmp, METH_NOARGS,
     "openmp() -> bool: whether rows() and cross_entropy() can split their rows over "
     "OpenMP threads in this process (built with OpenMP, and not a fork()ed child)."},
    {"exp16", ck_exp16, METH_VARARGS,
     "exp16(x, out, full=False): the AVX-512 kernels' exp (a table of 16), on x clamped to "
     "[-700, 0]: the float32 rows' (no tails), or with full the float64 rows'."},
    {"set_isa", ck_set_isa, METH_VARARGS, set_isa_doc},
    {"isas", ck_isas, METH_NOARGS, "isas() -> tuple: the kernels (set_isa) this CPU can run."},
    {"hugepages", ck_hugepages, METH_VARARGS,
     "hugepages([on]) -> bool: whether the *_at entry points advise their outputs of 4 MiB or "
     "more MADV_HUGEPAGE (Linux); sets it where on is given, and returns the previous "
     "setting."},
    {"rows", ck_rows, METH_VARARGS, rows_doc},
    {"rows_at", ck_rows_at, METH_VARARGS, rows_at_doc},
    {"sigmoid", ck_sigmoid, METH_VARARGS, sigmoid_doc},
    {"log1p_exp", ck_log1p_exp, METH_VARARGS, log1p_exp_doc},
    {"sigmoid_at", ck_sigmoid_at, METH_VARARGS, sigmoid_at_doc},
    {"log1p_exp_at", ck_log1p_exp_at, METH_VARARGS, log1p_exp_at_doc},
    {"cross_entropy_at", ck_cross_entropy_at, METH_VARARGS, ce_at_doc},
    {"cross_entropy_reduce", ck_cross_entropy_reduce, METH_VARARGS, ce_reduce_doc},
    {"xla_pool_tasks", ck_xla_pool_tasks, METH_NOARGS,
     "xla_pool_tasks() -> int: the tasks the XLA handlers have scheduled on XLA's thread "
     "pool so far (for the tests)."},
    {"xla_handlers", ck_xla_handlers, METH_NOARGS,
     "xla_handlers() -> dict: the XLA FFI handlers (PyCapsules) of rows, cross_entropy, "
     "its small-batch reduction and the sigmoid family, "
     "for jax.ffi.register_ffi_target on the CPU."},
    {"cross_entropy", ck_cross_entropy, METH_VARARGS, ce_doc},
    {"exp", ck_exp, METH_VARARGS, "exp(x, out, careful): the kernel's exp, for the tests."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef ck_module = {
    PyModuleDef_HEAD_INIT, "_ckernel", "Fused row kernels (see _ckernel.c).", -1, ck_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ckernel(void)
{
    PyObject *m = PyModule_Create(&ck_module);
    if (m == NULL)
        return NULL;
    use_avx512 = xact_avx512_usable();
#ifdef _OPENMP
    if (pthread_atfork(NULL, NULL, omp_after_fork_in_child) != 0)
        omp_usable = 0;
#endif
    PyObject *all = Py_BuildValue("[sssssssssssssssss]", "cross_entropy", "cross_entropy_at",
                                  "cross_entropy_reduce", "exp", "exp16", "hugepages", "isas",
                                  "log1p_exp",
                                  "log1p_exp_at", "openmp", "rows",
                                  "rows_at", "set_isa", "sigmoid", "sigmoid_at", "xla_handlers",
                                  "xla_pool_tasks");
    if (all == NULL || PyModule_AddObject(m, "__all__", all) < 0) {
        Py_XDECREF(all);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
