/* The float32 row kernels of _ckernel.c, written for AVX-512.
 *
 * The float32 rows are computed in float64, as everywhere in xact: that is
 * what makes their results correctly rounded on the hard inputs. The
 * portable kernel of _ckernel.c does this with the float64 machinery
 * (TwoSum of x - m, the clip at the cut-off, the subnormal exp, a table
 * read by gathers), none of which float32 needs, and it costs it about four
 * times the time of PyTorch's float32 softmax. This one keeps only what
 * float32 needs:
 *
 *   - x_j - m is exact in float64 (two floats), so there is no TwoSum;
 *   - s_j = x_j - m >= -700 (clamped): exp(-700) * n is below every float32
 *     result by hundreds of binades, so the clamped terms change nothing,
 *     and the exp needs no subnormal path;
 *   - exp(s) = 2^(k/16) exp(r), |r| <= ln2/32, with the 16 table entries in
 *     two registers (one vpermt2q, no gather) and a degree-6 polynomial
 *     (truncation error 3e-17); measured against mpmath, within 1.15 ULP
 *     of float64 (tests/test_fastpaths.py);
 *   - exp(0) = 1 exactly, so the maxima need no count: the sum S of all
 *     terms is compensated (Fast2Sum per term: every lane starts at 1, so
 *     its running sum is never below a term) and R = S - 1 keeps the
 *     small rest of a dominant row exact, as log1p(R) needs.
 *
 * logsumexp, log_softmax and cross_entropy are those of the portable kernel
 * to within an ULP of float64 before the rounding to float32; softmax (a
 * degree-4 exp, a plain sum, a product with 1/S) to within about 1e-11
 * relative. Either differs from the portable kernel by at most an ULP of
 * float32, where a result lies that near a rounding boundary; the two are
 * tested against each other and against the generic code
 * (tests/test_fastpaths.py).
 *
 * On other CPUs (or compilers) xact_avx512_usable() is 0 and the portable
 * kernel runs.
 */
#include "_ckernel.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(XACT_NO_AVX512)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f")))
#define I512 static inline __attribute__((always_inline, target("avx512f")))

/* The bits of 2^(j/16), less j << 48: adding ki << 48 (ki: k in the low
 * bits) gives 2^(j/16) 2^(k >> 4) (as in ARM's optimized-routines exp). */
static const uint64_t TAB16[16] = {
    0x3ff0000000000000ULL, 0x3fefb5586cf9890fULL, 0x3fef72b83c7d517bULL,
    0x3fef387a6e756238ULL, 0x3fef06fe0a31b715ULL, 0x3feedea64c123422ULL,
    0x3feebfdad5362a27ULL, 0x3feeab07dd485429ULL, 0x3feea09e667f3bcdULL,
    0x3feea11473eb0187ULL, 0x3feeace5422aa0dbULL, 0x3feec49182a3f090ULL,
    0x3feee89f995ad3adULL, 0x3fef199bdd85529cULL, 0x3fef5818dcfba487ULL,
    0x3fefa4afa2a490daULL,
};

#define INV16 0x1.71547652b82fep+4 /* 16 / ln 2 */
#define SHIFT16 0x1.8p52
#define LN2HI16 0x1.62e42fefa39efp-5 /* ln2/16 = LN2HI16 + LN2LO16 */
#define LN2LO16 0x1.abc9e3b39803fp-60
/* (exp(r) - 1 - r) / r^2 on |r| <= 1.01 ln2/32: mpmath.chebyfit, degree 4 */
#define C2 0x1.0000000000000p-1
#define C3 0x1.55555554d864cp-3
#define C4 0x1.5555555516dd1p-5
#define C5 0x1.11120ffce45e0p-7
#define C6 0x1.6c17c057d3d84p-10

typedef struct {
    __m512i t0, t1;
} Tab;

I512 Tab tab_load(void)
{
    Tab T;
    T.t0 = _mm512_loadu_si512((const void *)TAB16);
    T.t1 = _mm512_loadu_si512((const void *)(TAB16 + 8));
    return T;
}

/* s = k ln2/16 + r, |r| <= ln2/32 (two FMAs: r is exact to about 2^-59),
 * and the scale 2^(k/16) from the table. */
I512 __m512d reduce16(__m512d s, Tab T, __m512d *sc)
{
    __m512d kd = _mm512_fmadd_pd(s, _mm512_set1_pd(INV16), _mm512_set1_pd(SHIFT16));
    __m512i ki = _mm512_castpd_si512(kd);
    kd = _mm512_sub_pd(kd, _mm512_set1_pd(SHIFT16));
    __m512d r = _mm512_fnmadd_pd(kd, _mm512_set1_pd(LN2HI16), s);
    r = _mm512_fnmadd_pd(kd, _mm512_set1_pd(LN2LO16), r);
    __m512i sb = _mm512_permutex2var_epi64(T.t0, ki, T.t1);
    *sc = _mm512_castsi512_pd(_mm512_add_epi64(sb, _mm512_slli_epi64(ki, 48)));
    return r;
}

/* sc exp(r) = sc + sc (r + r^2 q) */
I512 __m512d rebuild(__m512d sc, __m512d r, __m512d q)
{
    return _mm512_fmadd_pd(sc, _mm512_fmadd_pd(_mm512_mul_pd(r, r), q, r), sc);
}

/* exp(s) for -700 <= s <= 0 (8 lanes) */
I512 __m512d exp8(__m512d s, Tab T)
{
    __m512d sc, r = reduce16(s, T, &sc);
    __m512d q = _mm512_fmadd_pd(_mm512_set1_pd(C6), r, _mm512_set1_pd(C5));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(C4));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(C3));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(C2));
    return rebuild(sc, r, q);
}

/* exp(s) for -700 <= s <= 0, to about 1e-11 (softmax: its error is that
 * of the terms, not amplified): a degree-4 polynomial, and r from one FMA
 * (ln2/16 to 53 bits: |k| <= 16160, so r is off by at most 2.4e-14, and
 * by 4e-15 where s >= -104, below which a term is under float32's
 * smallest subnormal; emulated exactly against mpmath over [-700, 0], the
 * worst relative error is 9.45e-12 either way, the polynomial's). One
 * operation less than reduce16; the float32 terms are loaded as two halves
 * of 8 floats (no extract). Together 6 to 7% less time for a float32
 * softmax (AMD Zen 4). The float32 sigmoid in float64 lanes (below) takes
 * it too: its 1e-10 before the rounding is unchanged. */
#define D2 0x1.0000000000000p-1 /* (exp(r) - 1 - r) / r^2, degree 2: chebyfit */
#define D3 0x1.5556e6d5c0e85p-3
#define D4 0x1.55566100223bfp-5
I512 __m512d exp8_short(__m512d s, Tab T)
{
    __m512d kd = _mm512_fmadd_pd(s, _mm512_set1_pd(INV16), _mm512_set1_pd(SHIFT16));
    __m512i ki = _mm512_castpd_si512(kd);
    kd = _mm512_sub_pd(kd, _mm512_set1_pd(SHIFT16));
    __m512d r = _mm512_fnmadd_pd(kd, _mm512_set1_pd(LN2HI16), s);
    __m512i sb = _mm512_permutex2var_epi64(T.t0, ki, T.t1);
    __m512d sc = _mm512_castsi512_pd(_mm512_add_epi64(sb, _mm512_slli_epi64(ki, 48)));
    __m512d q = _mm512_fmadd_pd(_mm512_set1_pd(D4), r, _mm512_set1_pd(D3));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(D2));
    return rebuild(sc, r, q);
}

/* The low and high 8 floats of v, as doubles. */
I512 __m512d lo8(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
I512 __m512d hi8(__m512 v)
{
    return _mm512_cvtps_pd(
        _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

I512 __mmask16 tail_mask(Py_ssize_t left) { return (__mmask16)((1u << left) - 1u); }

T512 int xact_f32_max(const float *x, Py_ssize_t n, double *m_out)
{
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 m0 = ninf, m1 = ninf;
    __mmask16 nan = 0;
    Py_ssize_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m512 a = _mm512_loadu_ps(x + j), b = _mm512_loadu_ps(x + j + 16);
        nan |= _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q);
        m0 = _mm512_max_ps(m0, a);
        m1 = _mm512_max_ps(m1, b);
    }
    for (; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? (__mmask16)0xffff : tail_mask(n - j);
        __m512 a = _mm512_mask_loadu_ps(ninf, k, x + j);
        nan |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
        m0 = _mm512_max_ps(m0, a);
    }
    float m = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
    *m_out = m;
    return !nan && fabs((double)m) < XACT_LARGEST;
}

/* The cache line of next + j (next: the row to come, or NULL). */
I512 void fetch(const float *next, Py_ssize_t j)
{
    if (next != NULL)
        _mm_prefetch((const char *)(next + j), _MM_HINT_T0);
}

/* The number of floats at o before a 32-byte boundary (o is 4-byte
 * aligned), at most n: stored as usual before the non-temporal stores. */
I512 Py_ssize_t head32(const float *o, Py_ssize_t n)
{
    Py_ssize_t h = (Py_ssize_t)(((uintptr_t)0 - (uintptr_t)o) & 31) / 4;
    return h < n ? h : n;
}

/* One Fast2Sum step per lane: |acc| >= |t| always (acc >= 1 >= t). */
I512 void f2s(__m512d *acc, __m512d *err, __m512d t)
{
    __m512d y = _mm512_add_pd(*acc, t);
    __m512d z = _mm512_sub_pd(y, *acc);
    *err = _mm512_add_pd(*err, _mm512_sub_pd(t, z));
    *acc = y;
}

/* The arguments s = max(x - m, -700) of 16 floats, as two halves. */
I512 void shift16(__m512 v, __m512d vm, __m512d floor_, __m512d *sa, __m512d *sb)
{
    *sa = _mm512_max_pd(_mm512_sub_pd(lo8(v), vm), floor_);
    *sb = _mm512_max_pd(_mm512_sub_pd(hi8(v), vm), floor_);
}

/* The last n - j < 16 floats of x, the lanes past the end reading m (s = 0
 * there, to be masked out with ka and kb, the masks of the two halves). */
I512 __m512 load_tail(const float *x, Py_ssize_t j, Py_ssize_t n, double m, __mmask8 *ka,
                      __mmask8 *kb)
{
    __mmask16 k = tail_mask(n - j);
    *ka = (__mmask8)k, *kb = (__mmask8)(k >> 8);
    return _mm512_mask_loadu_ps(_mm512_set1_ps((float)m), k, x + j);
}

/* max(x - m, -700) of the 8 floats at p, as doubles */
I512 __m512d shift8d(const float *p, __m512d vm, __m512d floor_)
{
    return _mm512_max_pd(_mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(p)), vm), floor_);
}

T512 double xact_f32_exps(const float *x, Py_ssize_t n, double m, double *w, const float *next)
{
    const Tab T = tab_load();
    const __m512d vm = _mm512_set1_pd(m), floor_ = _mm512_set1_pd(-700.0);
    __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
    Py_ssize_t j = 0;
    __m512d sa, sb;
    /* 32 floats a step (more work in flight; each accumulator adds the same
     * terms in the same order as 16 a step: the same bits) */
    for (; j + 32 <= n; j += 32) {
        fetch(next, j);
        fetch(next, j + 16);
        __m512d s0 = shift8d(x + j, vm, floor_), s1 = shift8d(x + j + 8, vm, floor_);
        __m512d s2 = shift8d(x + j + 16, vm, floor_), s3 = shift8d(x + j + 24, vm, floor_);
        __m512d t0 = exp8_short(s0, T), t1 = exp8_short(s1, T);
        __m512d t2 = exp8_short(s2, T), t3 = exp8_short(s3, T);
        _mm512_storeu_pd(w + j, t0);
        _mm512_storeu_pd(w + j + 8, t1);
        _mm512_storeu_pd(w + j + 16, t2);
        _mm512_storeu_pd(w + j + 24, t3);
        acc0 = _mm512_add_pd(_mm512_add_pd(acc0, t0), t2);
        acc1 = _mm512_add_pd(_mm512_add_pd(acc1, t1), t3);
    }
    for (; j + 16 <= n; j += 16) {
        fetch(next, j);
        sa = shift8d(x + j, vm, floor_);
        sb = shift8d(x + j + 8, vm, floor_);
        __m512d ta = exp8_short(sa, T), tb = exp8_short(sb, T);
        _mm512_storeu_pd(w + j, ta);
        _mm512_storeu_pd(w + j + 8, tb);
        acc0 = _mm512_add_pd(acc0, ta);
        acc1 = _mm512_add_pd(acc1, tb);
    }
    if (j < n) {
        __mmask8 ka, kb;
        shift16(load_tail(x, j, n, m, &ka, &kb), vm, floor_, &sa, &sb);
        __m512d ta = _mm512_maskz_mov_pd(ka, exp8_short(sa, T));
        __m512d tb = _mm512_maskz_mov_pd(kb, exp8_short(sb, T));
        _mm512_mask_storeu_pd(w + j, ka, ta);
        _mm512_mask_storeu_pd(w + j + 8, kb, tb);
        acc0 = _mm512_add_pd(acc0, ta);
        acc1 = _mm512_add_pd(acc1, tb);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
}

T512 double xact_f32_sum(const float *x, Py_ssize_t n, double m, const float *next)
{
    const Tab T = tab_load();
    const __m512d vm = _mm512_set1_pd(m), floor_ = _mm512_set1_pd(-700.0);
    const __m512d one = _mm512_set1_pd(1.0), zero = _mm512_setzero_pd();
    __m512d acc0 = one, acc1 = one, err0 = zero, err1 = zero;
    Py_ssize_t j = 0;
    __m512d sa, sb;
    for (; j + 16 <= n; j += 16) {
        fetch(next, j);
        shift16(_mm512_loadu_ps(x + j), vm, floor_, &sa, &sb);
        f2s(&acc0, &err0, exp8(sa, T));
        f2s(&acc1, &err1, exp8(sb, T));
    }
    if (j < n) {
        __mmask8 ka, kb;
        shift16(load_tail(x, j, n, m, &ka, &kb), vm, floor_, &sa, &sb);
        __m512d ta = _mm512_maskz_mov_pd(ka, exp8(sa, T));
        __m512d tb = _mm512_maskz_mov_pd(kb, exp8(sb, T));
        f2s(&acc0, &err0, ta);
        f2s(&acc1, &err1, tb);
    }
    double a[16], e[16];
    _mm512_storeu_pd(a, acc0);
    _mm512_storeu_pd(a + 8, acc1);
    _mm512_storeu_pd(e, err0);
    _mm512_storeu_pd(e + 8, err1);
    /* The 16 lanes (each 1 + its terms) into hi + lo by TwoSum. */
    double hi = 0.0, lo = 0.0;
    for (int l = 0; l < 16; l++) {
        double y = hi + a[l];
        double bb = y - hi;
        lo += (hi - (y - bb)) + (a[l] - bb);
        hi = y;
        lo += e[l];
    }
    /* R = S - 1, S = hi + lo - 16: hi - 17 is exact for hi <= 34, and
     * hi > 34 means R > 17, where its rounding is harmless. */
    return (hi - 17.0) + lo;
}

T512 void xact_f32_scale(const double *w, Py_ssize_t n, double inv, float *o, int stream)
{
    const __m512d vi = _mm512_set1_pd(inv);
    Py_ssize_t j = 0;
    if (stream) {
        Py_ssize_t h = head32(o, n);
        if (h > 0) {
            __mmask8 k = (__mmask8)((1u << h) - 1u);
            __m256 r = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_maskz_loadu_pd(k, w), vi));
            _mm512_mask_storeu_ps(o, (__mmask16)k, _mm512_castps256_ps512(r));
        }
        for (j = h; j + 8 <= n; j += 8)
            _mm256_stream_ps(o + j, _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_loadu_pd(w + j), vi)));
        _mm_sfence();
    }
    /* (16 a step where the stores are normal: 2 to 4% less time for a
     * float32 softmax of 4096x1000, the same bits) */
    for (; j + 16 <= n; j += 16) {
        __m256 a = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_loadu_pd(w + j), vi));
        __m256 b = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_loadu_pd(w + j + 8), vi));
        __m512d ab = _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(a)),
                                        _mm256_castps_pd(b), 1);
        _mm512_storeu_ps(o + j, _mm512_castpd_ps(ab));
    }
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(o + j, _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_loadu_pd(w + j), vi)));
    if (j < n) {
        __mmask8 k = (__mmask8)((1u << (n - j)) - 1u);
        __m256 r = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_maskz_loadu_pd(k, w + j), vi));
        _mm512_mask_storeu_ps(o + j, (__mmask16)k, _mm512_castps256_ps512(r));
    }
}

/* (x_j - m) - lg of 8 floats (+ 0.0f after the rounding: a tiny negative
 * value rounds to -0.0, where the generic float32 arithmetic has +0.0) */
I512 __m256 shift8(__m512d a, __m512d vm, __m512d vl)
{
    return _mm256_add_ps(_mm512_cvtpd_ps(_mm512_sub_pd(_mm512_sub_pd(a, vm), vl)),
                         _mm256_setzero_ps());
}

T512 void xact_f32_shift(const float *x, Py_ssize_t n, double m, double lg, float *o, int stream)
{
    const __m512d vm = _mm512_set1_pd(m), vl = _mm512_set1_pd(lg);
    Py_ssize_t j = 0;
    if (stream) {
        Py_ssize_t h = head32(o, n);
        if (h > 0) {
            __mmask16 k = tail_mask(h);
            __m256 r = shift8(lo8(_mm512_maskz_loadu_ps(k, x)), vm, vl);
            _mm512_mask_storeu_ps(o, k, _mm512_castps256_ps512(r));
        }
        for (j = h; j + 8 <= n; j += 8)
            _mm256_stream_ps(o + j, shift8(_mm512_cvtps_pd(_mm256_loadu_ps(x + j)), vm, vl));
        _mm_sfence();
    }
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(o + j, shift8(_mm512_cvtps_pd(_mm256_loadu_ps(x + j)), vm, vl));
    if (j < n) {
        __mmask16 k = tail_mask(n - j);
        __m256 r = shift8(lo8(_mm512_maskz_loadu_ps(k, x + j)), vm, vl);
        _mm512_mask_storeu_ps(o + j, k, _mm512_castps256_ps512(r));
    }
}

T512 void xact_exp_avx512(const double *x, double *o, Py_ssize_t n)
{
    const Tab T = tab_load();
    const __m512d floor_ = _mm512_set1_pd(-700.0), zero = _mm512_setzero_pd();
    for (Py_ssize_t j = 0; j < n; j += 8) {
        __mmask8 k = n - j >= 8 ? (__mmask8)0xff : (__mmask8)((1u << (n - j)) - 1u);
        __m512d v = _mm512_maskz_loadu_pd(k, x + j);
        v = _mm512_min_pd(_mm512_max_pd(v, floor_), zero);
        _mm512_mask_storeu_pd(o + j, k, exp8(v, T));
    }
}

/* ------------------------------------------------------------------------
 * float64 rows. The portable kernel's pass 2 (_ckernel.c) reads its exp's
 * table of 128 entries with gathers, which take a third of its time on
 * the CPUs measured (AMD Zen 4); here the exp has the 16 entries of TAB16
 * with their tails, in four registers (two vpermt2q), and a degree-7
 * polynomial: as accurate (measured against mpmath, within 0.53 ULP over
 * [-700, 0], tests/test_fastpaths.py). The rest is the portable kernel's
 * arithmetic, kept in registers: the TwoSum of x - m, the terms t (1 + e),
 * the per-lane compensated sums (lane j mod 8 taking term j) and their
 * total. Results differ from the portable kernel's only by the exp's
 * rounding (at most an ULP; the tests compare the two). For the rows whose
 * every term is at least exp(-700) (not "careful"): the others, with
 * subnormal terms, take the portable kernel. */

/* 2^(j/16) / asdouble(TAB16[j] + (j << 48)) - 1 (mpmath, 200 bits) */
static const uint64_t TAIL16[16] = {
    0x0000000000000000ULL, 0x3c979aa65d837b6dULL, 0xbc801b15eaa59348ULL,
    0x3c968efde3a8a894ULL, 0x3c834d754db0abb6ULL, 0x3c859f48a72a4c6dULL,
    0x3c7690cebb7aafb0ULL, 0x3c9063e1e21c5409ULL, 0xbc93b3efbf5e2228ULL,
    0xbc7b32dcb94da51dULL, 0x3c8db72fc1f0eab4ULL, 0x3c71affc2b91ce27ULL,
    0x3c8c1a7792cb3387ULL, 0x3c736eae30af0cb3ULL, 0x3c74a385a63d07a7ULL,
    0xbc8ff7128fd391f0ULL,
};
/* (exp(r) - 1 - r) / r^2 on |r| <= 1.01 ln2/32: mpmath.chebyfit, degree 5,
 * the constant term set to 1/2 (error 8e-20 relative) */
#define E2 0x1.0000000000000p-1
#define E3 0x1.5555555555556p-3
#define E4 0x1.55555554e4e34p-5
#define E5 0x1.11111110df174p-7
#define E6 0x1.6c17f353d3ca1p-10
#define E7 0x1.a01b118a75c35p-13

#define V(c) _mm512_set1_pd(c)

typedef struct {
    __m512i h0, h1;
    __m512d l0, l1;
} Tab2;

I512 Tab2 tab2_load(void)
{
    Tab2 T;
    T.h0 = _mm512_loadu_si512((const void *)TAB16);
    T.h1 = _mm512_loadu_si512((const void *)(TAB16 + 8));
    T.l0 = _mm512_loadu_pd((const void *)TAIL16);
    T.l1 = _mm512_loadu_pd((const void *)(TAIL16 + 8));
    return T;
}

/* exp(s) for -700 <= s <= 0 (8 lanes, float64 accurate):
 * 2^(k/16) (1 + tail) exp(r) = sc + sc (tail + r + r^2 q(r)) */
I512 __m512d exp8_full(__m512d s, Tab2 T)
{
    __m512d kd = _mm512_fmadd_pd(s, V(INV16), V(SHIFT16));
    __m512i ki = _mm512_castpd_si512(kd);
    kd = _mm512_sub_pd(kd, V(SHIFT16));
    __m512d r = _mm512_fnmadd_pd(kd, V(LN2HI16), s);
    r = _mm512_fnmadd_pd(kd, V(LN2LO16), r);
    __m512i sb = _mm512_permutex2var_epi64(T.h0, ki, T.h1);
    __m512d sc = _mm512_castsi512_pd(_mm512_add_epi64(sb, _mm512_slli_epi64(ki, 48)));
    __m512d tl = _mm512_permutex2var_pd(T.l0, ki, T.l1);
    __m512d q = _mm512_fmadd_pd(V(E7), r, V(E6));
    q = _mm512_fmadd_pd(q, r, V(E5));
    q = _mm512_fmadd_pd(q, r, V(E4));
    q = _mm512_fmadd_pd(q, r, V(E3));
    q = _mm512_fmadd_pd(q, r, V(E2));
    __m512d tmp = _mm512_add_pd(tl, _mm512_fmadd_pd(_mm512_mul_pd(r, r), q, r));
    return _mm512_fmadd_pd(sc, tmp, sc);
}

I512 __mmask8 tail_mask8(Py_ssize_t left)
{
    return left >= 8 ? (__mmask8)0xff : (__mmask8)((1u << left) - 1u);
}

/* The lanes k of the vector at p: a whole vector without a mask, the tail
 * with one. A masked load or store of a whole vector costs more on AMD Zen
 * 4 than a plain one (the float32 sigmoid lanes, single-threaded on data in
 * cache: 0.52 -> 0.46 ns an element); the values are the same. fill: what
 * the lanes outside k read. */
I512 __m512d load8(const double *p, __mmask8 k, __m512d fill)
{
    return k == 0xff ? _mm512_loadu_pd(p) : _mm512_mask_loadu_pd(fill, k, p);
}
I512 void store8(double *p, __mmask8 k, __m512d v)
{
    if (k == 0xff)
        _mm512_storeu_pd(p, v);
    else
        _mm512_mask_storeu_pd(p, k, v);
}
I512 __m512 load16(const float *p, __mmask16 k)
{
    return k == 0xffff ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(k, p);
}
I512 void store16(float *p, __mmask16 k, __m512 v)
{
    if (k == 0xffff)
        _mm512_storeu_ps(p, v);
    else
        _mm512_mask_storeu_ps(p, k, v);
}

/* s + e = x - m exactly (TwoSum) */
I512 __m512d two_diff(__m512d v, __m512d vm, __m512d *e)
{
    __m512d d = _mm512_sub_pd(v, vm);
    __m512d bb = _mm512_sub_pd(d, v);
    *e = _mm512_sub_pd(_mm512_sub_pd(v, _mm512_sub_pd(d, bb)), _mm512_add_pd(bb, vm));
    return d;
}

T512 void xact_f64_sums(const double *x, Py_ssize_t n, double m, double *w, double *rest,
                        double *k)
{
    const Tab2 T = tab2_load();
    const __m512d vm = V(m), floor_ = V(-700.0), one = V(1.0), zero = _mm512_setzero_pd();
    __m512d acc = zero, err = zero, cnt = zero;
    for (Py_ssize_t j = 0; j < n; j += 8) {
        __mmask8 kk = tail_mask8(n - j);
        /* (lanes past the end read m: s = 0 there, masked out below) */
        __m512d v = load8(x + j, kk, vm);
        __m512d e, s = two_diff(v, vm, &e);
        __m512d t = exp8_full(_mm512_max_pd(s, floor_), T);
        t = _mm512_mul_pd(t, _mm512_add_pd(one, e));
        __mmask8 is_max = _mm512_cmp_pd_mask(s, zero, _CMP_EQ_OQ) & kk;
        t = _mm512_maskz_mov_pd((__mmask8)(kk & ~is_max), t);
        if (w != NULL)
            store8(w + j, kk, t);
        __m512d y = _mm512_add_pd(acc, t);
        __m512d bb = _mm512_sub_pd(y, acc);
        err = _mm512_add_pd(err, _mm512_add_pd(_mm512_sub_pd(acc, _mm512_sub_pd(y, bb)),
                                               _mm512_sub_pd(t, bb)));
        acc = y;
        cnt = _mm512_mask_add_pd(cnt, is_max, cnt, one);
    }
    double a[8], er[8], c[8];
    _mm512_storeu_pd(a, acc);
    _mm512_storeu_pd(er, err);
    _mm512_storeu_pd(c, cnt);
    /* sums_total of _ckernel.c */
    double hi = 0.0, lo = 0.0, cc = 0.0;
    for (int l = 0; l < 8; l++) {
        double y = hi + a[l];
        double bb = y - hi;
        lo += (hi - (y - bb)) + (a[l] - bb);
        hi = y;
        lo += er[l];
        cc += c[l];
    }
    *rest = hi + lo;
    *k = cc;
}

T512 void xact_f64_divide(const double *x, const double *w, Py_ssize_t n, double m,
                          double denom, double *o)
{
    const __m512d vm = V(m), vd = V(denom), one = V(1.0);
    for (Py_ssize_t j = 0; j < n; j += 8) {
        __mmask8 kk = tail_mask8(n - j);
        __m512d v = load8(x + j, kk, _mm512_setzero_pd());
        __m512d t = load8(w + j, kk, _mm512_setzero_pd());
        __mmask8 is_max = _mm512_cmp_pd_mask(v, vm, _CMP_EQ_OQ);
        t = _mm512_mask_mov_pd(t, is_max, one);
        store8(o + j, kk, _mm512_div_pd(t, vd));
    }
}

T512 void xact_f64_shift(const double *x, Py_ssize_t n, double m, double lg, double *o)
{
    const __m512d vm = V(m), vl = V(lg);
    for (Py_ssize_t j = 0; j < n; j += 8) {
        __mmask8 kk = tail_mask8(n - j);
        __m512d v = load8(x + j, kk, vm);
        __m512d e, d = two_diff(v, vm, &e);
        store8(o + j, kk, _mm512_add_pd(_mm512_sub_pd(d, vl), e));
    }
}

/* Short float64 rows, eight at a time, one row a lane. On rows of ten,
 * the row-at-a-time functions above spend about 60 ns a row (AMD Zen 4):
 * two exps of eight lanes, a horizontal sum and the divide, each a chain
 * of dependent operations, and masked stores read back at once (no store
 * forwarding). Here each row is a lane: the rows' columns are gathered
 * once, and every pass runs on eight rows side by side. The arithmetic is
 * xact_f64_sums' per row, in its order: term j goes to partial sum
 * j mod 8, and the eight partial sums are combined as there, so the
 * results are the same bits (the tests compare the two). */
T512 unsigned xact_f64_small(const char *x, Py_ssize_t rs, int nr, Py_ssize_t n, int mode,
                             double *m_out, double *lg_out, double *out)
{
    double cb[XACT_SMALL_N][8] __attribute__((aligned(64)));
    double wb[XACT_SMALL_N][8] __attribute__((aligned(64)));
    if (n < 1 || n > XACT_SMALL_N)
        return 0;
    long long off[8];
    for (int r = 0; r < 8; r++)
        off[r] = r < nr ? (long long)(r * rs) : 0;
    const __m512i idx = _mm512_loadu_si512((const void *)off);
    const __mmask8 live = (__mmask8)((1u << nr) - 1u);
    const __m512d zero = _mm512_setzero_pd(), one = V(1.0);
    for (Py_ssize_t j = 0; j < n; j++)
        _mm512_store_pd(cb[j], _mm512_mask_i64gather_pd(zero, live, idx, x + j * 8, 1));

    /* scan(): the maximum (v > m ? v : m, as vmaxpd(v, m)), the minimum,
     * and the rows left to the per-row kernel */
    __m512d vm = _mm512_load_pd(cb[0]), mn = vm;
    __mmask8 nan = 0;
    for (Py_ssize_t j = 0; j < n; j++) {
        __m512d v = _mm512_load_pd(cb[j]);
        vm = _mm512_max_pd(v, vm);
        mn = _mm512_min_pd(v, mn);
        nan |= _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q);
    }
    __mmask8 ok = live & (__mmask8)~nan &
                  _mm512_cmp_pd_mask(_mm512_abs_pd(vm), V(XACT_LARGEST), _CMP_LT_OQ) &
                  _mm512_cmp_pd_mask(_mm512_sub_pd(mn, vm), V(-700.0), _CMP_GE_OQ);
    if (ok == 0)
        return 0;

    /* xact_f64_sums */
    const Tab2 T = tab2_load();
    const __m512d floor_ = V(-700.0);
    __m512d acc[8], err[8], cnt = zero;
    for (int l = 0; l < 8; l++)
        acc[l] = err[l] = zero;
    for (Py_ssize_t j = 0; j < n; j++) {
        const int l = (int)(j & 7);
        __m512d e, s = two_diff(_mm512_load_pd(cb[j]), vm, &e);
        __m512d t = exp8_full(_mm512_max_pd(s, floor_), T);
        t = _mm512_mul_pd(t, _mm512_add_pd(one, e));
        __mmask8 is_max = _mm512_cmp_pd_mask(s, zero, _CMP_EQ_OQ);
        t = _mm512_maskz_mov_pd((__mmask8)~is_max, t);
        if (mode == XACT_SOFTMAX)
            _mm512_store_pd(wb[j], t);
        __m512d y = _mm512_add_pd(acc[l], t);
        __m512d bb = _mm512_sub_pd(y, acc[l]);
        err[l] = _mm512_add_pd(err[l], _mm512_add_pd(_mm512_sub_pd(acc[l], _mm512_sub_pd(y, bb)),
                                                     _mm512_sub_pd(t, bb)));
        acc[l] = y;
        cnt = _mm512_mask_add_pd(cnt, is_max, cnt, one);
    }
    __m512d hi = zero, lo = zero;
    for (int l = 0; l < 8; l++) {
        __m512d y = _mm512_add_pd(hi, acc[l]);
        __m512d bb = _mm512_sub_pd(y, hi);
        lo = _mm512_add_pd(lo, _mm512_add_pd(_mm512_sub_pd(hi, _mm512_sub_pd(y, bb)),
                                             _mm512_sub_pd(acc[l], bb)));
        hi = y;
        lo = _mm512_add_pd(lo, err[l]);
    }
    __m512d rest = _mm512_add_pd(hi, lo);
    _mm512_storeu_pd(m_out, vm);

    __m512d vl;
    if (mode == XACT_SOFTMAX) {
        vl = _mm512_add_pd(cnt, rest); /* the denominator k + r */
    } else {
        double a[8];
        _mm512_storeu_pd(a, _mm512_add_pd(_mm512_sub_pd(cnt, one), rest));
        for (int r = 0; r < 8; r++)
            lg_out[r] = (ok >> r & 1) ? log1p(a[r]) : 0.0;
        vl = _mm512_loadu_pd(lg_out);
    }
    if (mode != XACT_SOFTMAX && mode != XACT_LOG_SOFTMAX)
        return ok;

    /* xact_f64_divide or xact_f64_shift, a column at a time, into cb */
    for (Py_ssize_t j = 0; j < n; j++) {
        __m512d v = _mm512_load_pd(cb[j]), o;
        if (mode == XACT_SOFTMAX) {
            __mmask8 is_max = _mm512_cmp_pd_mask(v, vm, _CMP_EQ_OQ);
            o = _mm512_div_pd(_mm512_mask_mov_pd(_mm512_load_pd(wb[j]), is_max, one), vl);
        } else {
            __m512d e, d = two_diff(v, vm, &e);
            o = _mm512_add_pd(_mm512_sub_pd(d, vl), e);
        }
        _mm512_store_pd(cb[j], o);
    }
    for (int r = 0; r < nr; r++) {
        if (!(ok >> r & 1))
            continue;
        double *orow = out + r * n;
        for (Py_ssize_t j = 0; j < n; j++)
            orow[j] = cb[j][r];
    }
    return ok;
}

/* sigmoid, in float64 as the NumPy path has it: t = exp(-|x|),
 * (x >= 0 ? 1 : t) / (1 + t), one rounding for float32 results. The exp
 * takes [-700, 0]: for float32 input, whose results round to 0 or 1
 * beyond, the clamp is exact; float64 lanes with |x| > 700 are redone with
 * libm's exp (subnormal results). NaN stays NaN. */
I512 __m512d sigmoid8(__m512d v, __m512d t)
{
    __m512d d = _mm512_add_pd(V(1.0), t);
    __mmask8 pos = _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_GE_OQ);
    return _mm512_div_pd(_mm512_mask_mov_pd(t, pos, V(1.0)), d);
}

I512 __m512d neg_abs_floor(__m512d v)
{
    const __m512i sign = _mm512_set1_epi64((long long)0x8000000000000000ULL);
    __m512d na = _mm512_castsi512_pd(_mm512_or_si512(_mm512_castpd_si512(v), sign));
    return _mm512_max_pd(V(-700.0), na); /* (NaN: the second operand, na) */
}

T512 void xact_sigmoid_f64(const double *x, double *o, Py_ssize_t n)
{
    const Tab2 T = tab2_load();
    for (Py_ssize_t j = 0; j < n; j += 8) {
        __mmask8 kk = tail_mask8(n - j);
        __m512d v = load8(x + j, kk, _mm512_setzero_pd());
        __m512d s = neg_abs_floor(v);
        __m512d r = sigmoid8(v, exp8_full(s, T));
        store8(o + j, kk, r);
        __mmask8 far = _mm512_cmp_pd_mask(s, V(-700.0), _CMP_EQ_OQ) & kk;
        for (int l = 0; far; l++, far >>= 1) {
            if (far & 1) {
                double xv = x[j + l], t = exp(-fabs(xv));
                o[j + l] = (xv >= 0.0 ? 1.0 : t) / (1.0 + t);
            }
        }
    }
}

/* float32: the same, with the exp of softmax (to about 1e-11) and 1 / (1 + t)
 * from rcp14 and two Newton steps (to about 2^-52): within 1e-10 of the
 * float64 result before the rounding to float32, where a division would
 * take most of the time. */
I512 __m512d sigmoid8_f32(__m512d v, __m512d t)
{
    const __m512d one = V(1.0);
    __m512d d = _mm512_add_pd(one, t);
    __m512d y = _mm512_rcp14_pd(d);
    y = _mm512_fmadd_pd(y, _mm512_fnmadd_pd(d, y, one), y);
    y = _mm512_fmadd_pd(y, _mm512_fnmadd_pd(d, y, one), y);
    __mmask8 pos = _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_GE_OQ);
    return _mm512_mask_mov_pd(_mm512_mul_pd(t, y), pos, y);
}

T512 void xact_sigmoid_f32(const float *x, float *o, Py_ssize_t n)
{
    const Tab T = tab_load();
    for (Py_ssize_t j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? (__mmask16)0xffff : tail_mask(n - j);
        __m512 v = load16(x + j, k);
        __m512d va = lo8(v), vb = hi8(v);
        __m512d sa = neg_abs_floor(va), sb = neg_abs_floor(vb);
        __m256 ra = _mm512_cvtpd_ps(sigmoid8_f32(va, exp8_short(sa, T)));
        __m256 rb = _mm512_cvtpd_ps(sigmoid8_f32(vb, exp8_short(sb, T)));
        __m512 r = _mm512_castpd_ps(_mm512_insertf64x4(
            _mm512_castpd256_pd512(_mm256_castps_pd(ra)), _mm256_castps_pd(rb), 1));
        store16(o + j, k, r);
    }
}

/* log_sigmoid (sign -1) and softplus (sign +1): min(x, 0) - log1p(t) and
 * max(x, 0) + log1p(t), t = exp(-|x|), in float64 as the NumPy path
 * computes them. log1p(t) for 0 <= t <= 1: below t = 1/32 a polynomial in
 * t itself (relative accuracy for tiny t); above, u = 1 + t (its rounding
 * error c kept), u = c_j (1 + r) with c_j = 1 + (2j + 1)/32 from the top
 * four bits of u, log u = L_j + log1p(r), |r| <= 1/33, L_j = -log(1/c_j
 * rounded) in two parts, and c / u added. log1p(r) = r - r^2/2 + r^3 q(r),
 * q of degree 7 (mpmath.chebyfit on |r| <= 1.01/32: 0.006 ULP). u = 2
 * (t within 2^-53 of 1) is ln 2 + c/2. Lanes with |x| >= 700 (their t is
 * subnormal, or x infinite) are redone with libm. */
static const uint64_t LINV16[16] = {
    0x3fef07c1f07c1f08ULL, 0x3fed41d41d41d41dULL, 0x3febacf914c1bad0ULL,
    0x3fea41a41a41a41aULL, 0x3fe8f9c18f9c18faULL, 0x3fe7d05f417d05f4ULL,
    0x3fe6c16c16c16c17ULL, 0x3fe5c9882b931057ULL, 0x3fe4e5e0a72f0539ULL,
    0x3fe4141414141414ULL, 0x3fe3521cfb2b78c1ULL, 0x3fe29e4129e4129eULL,
    0x3fe1f7047dc11f70ULL, 0x3fe15b1e5f75270dULL, 0x3fe0c9714fbcda3bULL,
    0x3fe0410410410410ULL,
};
static const uint64_t LHI16[16] = {
    0x3f9f829b0e7832f8ULL, 0x3fb6f0d28ae56b4eULL, 0x3fc29552f81ff521ULL,
    0x3fc9525a9cf456b6ULL, 0x3fcfb9186d5e3e29ULL, 0x3fd2e8e2bae11d31ULL,
    0x3fd5d1bdbf5809caULL, 0x3fd89a3386c1425bULL, 0x3fdb44f77bcc8f64ULL,
    0x3fddd46a04c1c4a1ULL, 0x3fe02552a5a5d0ffULL, 0x3fe154c3d2f4d5eaULL,
    0x3fe2795e1289b11bULL, 0x3fe393e0d3562a1aULL, 0x3fe4a4f85db03ebbULL,
    0x3fe5ad404c359f2dULL,
};
static const uint64_t LLO16[16] = {
    0x3c333e3f04f1ef25ULL, 0xbc420db323097324ULL, 0x3c6301771c407dc0ULL,
    0xbc626fb3e2b1d1daULL, 0x3c6355519b0de535ULL, 0xbc61e99b72bd7bf2ULL,
    0xbc77dc9c7c23801fULL, 0x3c62d38c40881e0bULL, 0xbc2a0892a8b38eedULL,
    0xbc119d95b62e2476ULL, 0x3c6e9c695d7ee800ULL, 0x3c698f33a3965e29ULL,
    0x3c8ade0fcf6e5a1dULL, 0xbc838eef67f2483aULL, 0xbc8d76102e1644f2ULL,
    0x3c8eca6aa97c08e7ULL,
};
#define Q0 0x1.5555555555549p-2
#define Q1 (-0x1.fffffffffffe9p-3)
#define Q2 0x1.9999999a5f907p-3
#define Q3 (-0x1.555555560acdfp-3)
#define Q4 0x1.249239fbdacadp-3
#define Q5 (-0x1.ffffe435365b2p-4)
#define Q6 0x1.c7da96c02b3d0p-4
#define Q7 (-0x1.9a47e6d49e47fp-4)
#define LN2_HI 0x1.62e42fefa39efp-1
#define LN2_LO 0x1.abc9e3b39803fp-56

typedef struct {
    __m512d i0, i1, h0, h1, l0, l1;
} LogTab;

I512 LogTab logtab_load(void)
{
    LogTab L;
    L.i0 = _mm512_loadu_pd((const void *)LINV16);
    L.i1 = _mm512_loadu_pd((const void *)(LINV16 + 8));
    L.h0 = _mm512_loadu_pd((const void *)LHI16);
    L.h1 = _mm512_loadu_pd((const void *)(LHI16 + 8));
    L.l0 = _mm512_loadu_pd((const void *)LLO16);
    L.l1 = _mm512_loadu_pd((const void *)(LLO16 + 8));
    return L;
}

/* log1p(t) for 0 <= t <= 1 (NaN stays NaN) */
I512 __m512d log1p8(__m512d t, LogTab L)
{
    const __m512d one = V(1.0);
    __m512d u = _mm512_add_pd(one, t);
    __m512d c = _mm512_add_pd(_mm512_sub_pd(one, u), t);
    __mmask8 small = _mm512_cmp_pd_mask(t, V(0x1p-5), _CMP_LT_OQ);
    __m512d m = _mm512_getmant_pd(u, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    __m512i j = _mm512_srli_epi64(_mm512_castpd_si512(m), 48); /* (low 4 bits: the index) */
    __m512d inv = _mm512_permutex2var_pd(L.i0, j, L.i1);
    __m512d r = _mm512_mask_mov_pd(_mm512_fmsub_pd(m, inv, one), small, t);
    __m512d lh = _mm512_maskz_mov_pd((__mmask8)~small, _mm512_permutex2var_pd(L.h0, j, L.h1));
    __m512d ll = _mm512_maskz_mov_pd((__mmask8)~small, _mm512_permutex2var_pd(L.l0, j, L.l1));
    __m512d corr = _mm512_maskz_mul_pd((__mmask8)~small, c, inv);
    __m512d q = _mm512_fmadd_pd(V(Q7), r, V(Q6));
    q = _mm512_fmadd_pd(q, r, V(Q5));
    q = _mm512_fmadd_pd(q, r, V(Q4));
    q = _mm512_fmadd_pd(q, r, V(Q3));
    q = _mm512_fmadd_pd(q, r, V(Q2));
    q = _mm512_fmadd_pd(q, r, V(Q1));
    q = _mm512_fmadd_pd(q, r, V(Q0));
    /* r^2 (-1/2 + r q) */
    __m512d p = _mm512_mul_pd(_mm512_mul_pd(r, r), _mm512_fmadd_pd(r, q, V(-0.5)));
    __m512d sh = _mm512_add_pd(lh, r); /* Fast2Sum: |lh| >= |r| or lh = 0 */
    __m512d err = _mm512_add_pd(_mm512_sub_pd(lh, sh), r);
    __m512d y = _mm512_add_pd(sh, _mm512_add_pd(err, _mm512_add_pd(ll, _mm512_add_pd(corr, p))));
    __mmask8 two = _mm512_cmp_pd_mask(u, V(2.0), _CMP_EQ_OQ);
    __m512d y2 = _mm512_add_pd(V(LN2_HI), _mm512_fmadd_pd(c, V(0.5), V(LN2_LO)));
    return _mm512_mask_mov_pd(y, two, y2);
}

/* sign * (max or min)(x, 0) + sign * log1p(exp(-|x|)) on 8 lanes; far: the
 * lanes left to libm */
I512 __m512d log1p_exp8(__m512d v, double sign, Tab2 T, LogTab L, __mmask8 *far)
{
    __m512d s = neg_abs_floor(v);
    *far = _mm512_cmp_pd_mask(s, V(-700.0), _CMP_EQ_OQ);
    __m512d y = log1p8(exp8_full(s, T), L);
    if (sign < 0)
        return _mm512_sub_pd(_mm512_min_pd(v, _mm512_setzero_pd()), y);
    return _mm512_add_pd(_mm512_max_pd(v, _mm512_setzero_pd()), y);
}

static double log1p_exp1(double v, double sign)
{
    double y = log1p(exp(-fabs(v)));
    return sign < 0 ? fmin(v, 0.0) - y : fmax(v, 0.0) + y;
}

T512 void xact_log1p_exp_f64(const double *x, double *o, Py_ssize_t n, double sign)
{
    const Tab2 T = tab2_load();
    const LogTab L = logtab_load();
    for (Py_ssize_t j = 0; j < n; j += 8) {
        __mmask8 kk = tail_mask8(n - j), far;
        __m512d v = load8(x + j, kk, _mm512_setzero_pd());
        store8(o + j, kk, log1p_exp8(v, sign, T, L, &far));
        far &= kk;
        for (int l = 0; far; l++, far >>= 1)
            if (far & 1)
                o[j + l] = log1p_exp1(x[j + l], sign);
    }
}

T512 void xact_log1p_exp_f32(const float *x, float *o, Py_ssize_t n, double sign)
{
    const Tab2 T = tab2_load();
    const LogTab L = logtab_load();
    for (Py_ssize_t j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? (__mmask16)0xffff : tail_mask(n - j);
        __m512 v = load16(x + j, k);
        __mmask8 fa, fb;
        __m256 ra = _mm512_cvtpd_ps(log1p_exp8(lo8(v), sign, T, L, &fa));
        __m256 rb = _mm512_cvtpd_ps(log1p_exp8(hi8(v), sign, T, L, &fb));
        __m512 r = _mm512_castpd_ps(_mm512_insertf64x4(
            _mm512_castpd256_pd512(_mm256_castps_pd(ra)), _mm256_castps_pd(rb), 1));
        store16(o + j, k, r);
        unsigned far = ((unsigned)fa | ((unsigned)fb << 8)) & k;
        for (int l = 0; far; l++, far >>= 1)
            if (far & 1)
                o[j + l] = (float)log1p_exp1((double)x[j + l], sign);
    }
}

/* sigmoid of float32 in float32 lanes, for large torch tensors, where
 * torch.sigmoid (0 for the subnormal results below -88) is the
 * alternative: exp(-|x|) from 2^(j/16) in float32 with its tails, a
 * degree-4 polynomial (4e-11) and scalef (subnormal results included), kept
 * as e + e_lo (what the rounding of the mantissa left out); then the
 * quotient by 1 + e + e_lo from one division and its exact residual (FMA),
 * rounded once. Over every float32 input (2^32, exhaustively): within
 * 0.78 ULP of the truth, none above 1 ULP. */
static const uint32_t TH16F[16] = {
    0x3f800000U, 0x3f85aac3U, 0x3f8b95c2U, 0x3f91c3d3U, 0x3f9837f0U, 0x3f9ef532U,
    0x3fa5fed7U, 0x3fad583fU, 0x3fb504f3U, 0x3fbd08a4U, 0x3fc5672aU, 0x3fce248cU,
    0x3fd744fdU, 0x3fe0ccdfU, 0x3feac0c7U, 0x3ff5257dU,
};
static const uint32_t TL16F[16] = {
    0x00000000U, 0x3346cb6aU, 0xb24e0611U, 0x334b2482U, 0x33092801U, 0x331b85f2U,
    0xb3051aa8U, 0xb2006c56U, 0x329302aeU, 0xb302e5a2U, 0x31b3d0e5U, 0x31d1daf2U,
    0xb27ce182U, 0xb1b4b0daU, 0xb1d290beU, 0x31b0a147U,
};

T512 void xact_sigmoid_f32_lanes(const float *x, float *o, Py_ssize_t n)
{
    const __m512 th = _mm512_loadu_ps((const void *)TH16F);
    const __m512 tl = _mm512_loadu_ps((const void *)TL16F);
    const __m512 one = _mm512_set1_ps(1.0f), floor_ = _mm512_set1_ps(-104.0f);
    const __m512 shift = _mm512_set1_ps(0x1.8p23f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000U);
    for (Py_ssize_t j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? (__mmask16)0xffff : tail_mask(n - j);
        __m512 v = load16(x + j, k);
        __m512 na = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v), sign));
        __m512 s = _mm512_max_ps(floor_, na); /* (NaN: the second operand) */
        __m512 kd = _mm512_fmadd_ps(s, _mm512_set1_ps(0x1.715476p+4f), shift);
        __m512i ki = _mm512_castps_si512(kd);
        kd = _mm512_sub_ps(kd, shift);
        __m512 r = _mm512_fnmadd_ps(kd, _mm512_set1_ps(0x1.62ep-5f), s);
        r = _mm512_fnmadd_ps(kd, _mm512_set1_ps(0x1.0bfbe8p-19f), r);
        __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(0x1.555556p-5f), r, _mm512_set1_ps(0x1.555556p-3f));
        q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0.5f));
        __m512 p = _mm512_fmadd_ps(_mm512_mul_ps(r, r), q, r);
        __m512 t = _mm512_add_ps(_mm512_permutexvar_ps(ki, tl), p);
        __m512 h = _mm512_permutexvar_ps(ki, th);
        __m512 m = _mm512_fmadd_ps(h, t, h);
        /* what the rounding of m left out (h - m is exact: m/h is near 1) */
        __m512 m_lo = _mm512_fmadd_ps(h, t, _mm512_sub_ps(h, m));
        /* k = round(16 s / ln 2) is ki less the shift's bits: 2^(k >> 4) */
        __m512i kk = _mm512_sub_epi32(ki, _mm512_castps_si512(shift));
        __m512 sc = _mm512_cvtepi32_ps(_mm512_srai_epi32(kk, 4));
        __m512 e = _mm512_scalef_ps(m, sc), e_lo = _mm512_scalef_ps(m_lo, sc);
        __mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GE_OQ);
        __m512 d = _mm512_add_ps(one, e);
        /* 1 + e + e_lo = d + dl (dl to float32 precision) */
        __m512 dl = _mm512_add_ps(_mm512_add_ps(_mm512_sub_ps(one, d), e), e_lo);
        __m512 num = _mm512_mask_mov_ps(e, pos, one);
        __m512 y = _mm512_div_ps(num, d);
        /* the quotient of (num + num_lo) by (d + dl), rounded once:
         * y + ((num - y d) + num_lo - y dl) / d, num - y d exact (FMA) */
        __m512 rem = _mm512_fnmadd_ps(y, d, num);
        rem = _mm512_add_ps(rem, _mm512_maskz_mov_ps((__mmask16)~pos, e_lo));
        rem = _mm512_fnmadd_ps(y, dl, rem);
        y = _mm512_fmadd_ps(rem, _mm512_rcp14_ps(d), y);
        store16(o + j, k, y);
    }
}

T512 void xact_exp_f64_avx512(const double *x, double *o, Py_ssize_t n)
{
    const Tab2 T = tab2_load();
    const __m512d floor_ = _mm512_set1_pd(-700.0), zero = _mm512_setzero_pd();
    for (Py_ssize_t j = 0; j < n; j += 8) {
        __mmask8 k = tail_mask8(n - j);
        __m512d v = _mm512_maskz_loadu_pd(k, x + j);
        v = _mm512_min_pd(_mm512_max_pd(v, floor_), zero);
        _mm512_mask_storeu_pd(o + j, k, exp8_full(v, T));
    }
}

int xact_avx512_usable(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

#else /* not GCC on x86-64: the portable kernel only */

int xact_avx512_usable(void) { return 0; }
int xact_f32_max(const float *x, Py_ssize_t n, double *m_out)
{
    (void)x, (void)n, (void)m_out;
    return 0;
}
double xact_f32_sum(const float *x, Py_ssize_t n, double m, const float *next)
{
    (void)x, (void)n, (void)m, (void)next;
    return 0.0;
}
double xact_f32_exps(const float *x, Py_ssize_t n, double m, double *w, const float *next)
{
    (void)x, (void)n, (void)m, (void)w, (void)next;
    return 0.0;
}
void xact_f32_scale(const double *w, Py_ssize_t n, double inv, float *o, int stream)
{
    (void)w, (void)n, (void)inv, (void)o, (void)stream;
}
void xact_f32_shift(const float *x, Py_ssize_t n, double m, double lg, float *o, int stream)
{
    (void)x, (void)n, (void)m, (void)lg, (void)o, (void)stream;
}
void xact_exp_avx512(const double *x, double *o, Py_ssize_t n) { (void)x, (void)o, (void)n; }
void xact_exp_f64_avx512(const double *x, double *o, Py_ssize_t n) { (void)x, (void)o, (void)n; }
void xact_sigmoid_f64(const double *x, double *o, Py_ssize_t n) { (void)x, (void)o, (void)n; }
void xact_sigmoid_f32(const float *x, float *o, Py_ssize_t n) { (void)x, (void)o, (void)n; }
void xact_sigmoid_f32_lanes(const float *x, float *o, Py_ssize_t n) { (void)x, (void)o, (void)n; }
void xact_log1p_exp_f64(const double *x, double *o, Py_ssize_t n, double sign)
{
    (void)x, (void)o, (void)n, (void)sign;
}
void xact_log1p_exp_f32(const float *x, float *o, Py_ssize_t n, double sign)
{
    (void)x, (void)o, (void)n, (void)sign;
}
void xact_f64_sums(const double *x, Py_ssize_t n, double m, double *w, double *rest, double *k)
{
    (void)x, (void)n, (void)m, (void)w, (void)rest, (void)k;
}
void xact_f64_divide(const double *x, const double *w, Py_ssize_t n, double m, double denom,
                     double *o)
{
    (void)x, (void)w, (void)n, (void)m, (void)denom, (void)o;
}
void xact_f64_shift(const double *x, Py_ssize_t n, double m, double lg, double *o)
{
    (void)x, (void)n, (void)m, (void)lg, (void)o;
}
unsigned xact_f64_small(const char *x, Py_ssize_t rs, int nr, Py_ssize_t n, int mode,
                        double *m_out, double *lg_out, double *out)
{
    (void)x, (void)rs, (void)nr, (void)n, (void)mode, (void)m_out, (void)lg_out, (void)out;
    return 0;
}

#endif
