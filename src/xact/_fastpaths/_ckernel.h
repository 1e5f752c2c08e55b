/* Shared by _ckernel.c and _ckernel_avx512.c. */
#ifndef XACT_CKERNEL_H
#define XACT_CKERNEL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define XACT_LARGEST 1.7e308 /* xact._fastpaths.LARGEST_MAX */

/* The float32 kernels for AVX-512 (_ckernel_avx512.c); callable only where
 * xact_avx512_usable() is nonzero. */
int xact_avx512_usable(void);
/* The row maximum into *m; 0 for a row left to the caller (a NaN, or
 * |max| >= XACT_LARGEST). */
int xact_f32_max(const float *x, Py_ssize_t n, double *m);
/* The passes that read a row from cache take next (the next row to come,
 * or NULL) and fetch it into the cache as they go: a row of a large array
 * (a page, for a row of 1000 floats) would otherwise start each time with
 * a wait for memory, the hardware prefetchers stopping at page bounds. */
/* R = sum_j exp(x_j - m) - 1, compensated. */
double xact_f32_sum(const float *x, Py_ssize_t n, double m, const float *next);
/* S = sum_j exp(x_j - m) (not compensated; exp to about 1e-11), the terms
 * into w: for softmax, whose error is that of its terms. */
double xact_f32_exps(const float *x, Py_ssize_t n, double m, double *w, const float *next);
/* The output passes, with stream nonzero, store with non-temporal stores
 * (for an output much larger than the caches: no read of each line before
 * it is written, and no eviction of what the caller works on); the results
 * are the same either way. */
/* o_j = (float)(w_j * inv) */
void xact_f32_scale(const double *w, Py_ssize_t n, double inv, float *o, int stream);
/* o_j = (float)((x_j - m) - lg) */
void xact_f32_shift(const float *x, Py_ssize_t n, double m, double lg, float *o, int stream);
/* The exps of the float32 and float64 kernels, on float64 clamped to
 * [-700, 0] (for the tests). */
void xact_exp_avx512(const double *x, double *o, Py_ssize_t n);
void xact_exp_f64_avx512(const double *x, double *o, Py_ssize_t n);


/* The float64 rows for AVX-512: the portable kernel's arithmetic with
 * another exp (as accurate), for rows whose terms are all at least
 * exp(-700). */
/* Pass 2 of _ckernel.c (not careful): the rest and the count of the maxima;
 * with w, the terms (0 at the maxima) into it. */
void xact_f64_sums(const double *x, Py_ssize_t n, double m, double *w, double *rest, double *k);
/* o_j = (x_j == m ? 1 : w_j) / denom */
void xact_f64_divide(const double *x, const double *w, Py_ssize_t n, double m, double denom,
                     double *o);
/* o_j = ((x_j - m) - lg) + e_j, with e_j the TwoSum error of x_j - m */
void xact_f64_shift(const double *x, Py_ssize_t n, double m, double lg, double *o);
/* Up to 8 rows (nr) of n <= XACT_SMALL_N float64 values, row r at
 * x + r rs, with the arithmetic of the three functions above, one row a
 * lane. Returns the mask of the rows done; the others (a NaN, |max| >=
 * XACT_LARGEST, or an entry more than 700 below the maximum) are left to
 * the per-row kernel. For each row done: its maximum into m_out[r]; for
 * mode XACT_LSE, XACT_LOG_SOFTMAX (and any mode other than XACT_SOFTMAX)
 * log1p((k - 1) + r) into lg_out[r]; for XACT_SOFTMAX and
 * XACT_LOG_SOFTMAX the row's n results into out + r n. */
#define XACT_SMALL_N 32
#define XACT_LSE 0
#define XACT_SOFTMAX 1
#define XACT_LOG_SOFTMAX 2
unsigned xact_f64_small(const char *x, Py_ssize_t rs, int nr, Py_ssize_t n, int mode,
                        double *m_out, double *lg_out, double *out);
/* sigmoid as the NumPy path computes it, in float64:
 * (x >= 0 ? 1 : t) / (1 + t), t = exp(-|x|), rounded once for float32. */
void xact_sigmoid_f64(const double *x, double *o, Py_ssize_t n);
void xact_sigmoid_f32(const float *x, float *o, Py_ssize_t n);
/* float32 sigmoid in float32 lanes (within 0.78 ULP; AVX-512 only) */
void xact_sigmoid_f32_lanes(const float *x, float *o, Py_ssize_t n);
/* log_sigmoid (sign -1) and softplus (sign +1), AVX-512 only:
 * sign (min or max)(x, 0) + sign log1p(exp(-|x|)), in float64. */
void xact_log1p_exp_f64(const double *x, double *o, Py_ssize_t n, double sign);
void xact_log1p_exp_f32(const float *x, float *o, Py_ssize_t n, double sign);

#endif
