/* The part of XLA's FFI C ABI that xact's JAX handlers use.
 *
 * XLA (and so jaxlib) calls a custom call's handler through a stable C ABI,
 * defined in xla/ffi/api/c_api.h (shipped with jaxlib, see
 * jax.ffi.include_dir()); XLA keeps accepting handlers built against an
 * API version for at least 12 months after a newer one. Only the structs
 * and fields read or written here are declared, with their layout as in
 * that header (API version 0.1 onwards: these fields have not moved).
 * Declaring them here, not including jaxlib's header, lets setup.py build
 * the extension without jaxlib installed (pip's isolated build has none).
 *
 * Every struct that crosses the boundary starts with its size; XLA checks
 * the sizes that a handler reports against its own.
 */
#ifndef XACT_XLA_FFI_H
#define XACT_XLA_FFI_H

#include <stddef.h>
#include <stdint.h>

#define XACT_FFI_STRUCT_SIZE(type, last_field) \
    (offsetof(type, last_field) + sizeof(((type *)0)->last_field))

/* The API version the handlers report in their metadata. */
#define XACT_FFI_API_MAJOR 0
#define XACT_FFI_API_MINOR 1

typedef enum { XACT_FFI_EXTENSION_METADATA = 1 } xact_ffi_extension_type;

typedef struct xact_ffi_extension {
    size_t struct_size;
    xact_ffi_extension_type type;
    struct xact_ffi_extension *next;
} xact_ffi_extension;

typedef struct {
    size_t struct_size;
    xact_ffi_extension *extension_start;
    int major_version;
    int minor_version;
} xact_ffi_api_version;

typedef struct {
    size_t struct_size;
    xact_ffi_api_version api_version;
    uint32_t traits;
} xact_ffi_metadata;

typedef struct {
    xact_ffi_extension extension_base;
    xact_ffi_metadata *metadata;
} xact_ffi_metadata_extension;

typedef struct xact_ffi_error xact_ffi_error; /* opaque, owned by XLA */

typedef enum {
    XACT_FFI_INVALID_ARGUMENT = 3,
    XACT_FFI_RESOURCE_EXHAUSTED = 8,
} xact_ffi_error_code;

typedef struct {
    size_t struct_size;
    xact_ffi_extension *extension_start;
    const char *message;
    xact_ffi_error_code errc;
} xact_ffi_error_create_args;

typedef xact_ffi_error *xact_ffi_error_create(xact_ffi_error_create_args *args);

/* A task for XLA's thread pool (on the CPU: the pool that runs all of a
 * program's compute); it may run on any thread, late, or never in parallel
 * with the caller. */
typedef void xact_ffi_task(void *data);

typedef struct {
    size_t struct_size;
    xact_ffi_extension *extension_start;
    void *ctx;
    xact_ffi_task *task;
    void *data;
} xact_ffi_schedule_args;

typedef xact_ffi_error *xact_ffi_schedule(xact_ffi_schedule_args *args);

typedef struct {
    size_t struct_size;
    xact_ffi_extension *extension_start;
    xact_ffi_error *error;
} xact_ffi_error_destroy_args;

typedef void xact_ffi_error_destroy(xact_ffi_error_destroy_args *args);
typedef void xact_ffi_unused_fn(void);

/* The first fields of XLA_FFI_Api, up to the thread pool's scheduler (an
 * XLA whose struct_size does not reach it has none, or does not say so:
 * the handlers then split rows over an OpenMP team, as for NumPy). */
typedef struct {
    size_t struct_size;
    xact_ffi_extension *extension_start;
    xact_ffi_api_version api_version;
    const void *internal_api;
    xact_ffi_error_create *error_create;
    xact_ffi_unused_fn *error_get_message;
    xact_ffi_error_destroy *error_destroy;
    xact_ffi_unused_fn *handler_register, *stream_get, *type_register, *execution_context_get,
        *state_set, *state_get, *device_memory_allocate, *device_memory_free;
    xact_ffi_schedule *thread_pool_schedule;
} xact_ffi_api;

typedef enum {
    XACT_FFI_S32 = 4,
    XACT_FFI_S64 = 5,
    XACT_FFI_U8 = 6,
    XACT_FFI_F32 = 11,
    XACT_FFI_F64 = 12,
} xact_ffi_dtype;

typedef struct {
    size_t struct_size;
    xact_ffi_extension *extension_start;
    int dtype; /* xact_ffi_dtype */
    void *data;
    int64_t rank;
    int64_t *dims;
} xact_ffi_buffer;

typedef struct {
    size_t struct_size;
    xact_ffi_extension *extension_start;
    int64_t size;
    int *types; /* 1: a buffer */
    void **args;
} xact_ffi_args;

typedef struct {
    const char *ptr;
    size_t len;
} xact_ffi_bytes;

typedef struct {
    int dtype; /* xact_ffi_dtype */
    void *value;
} xact_ffi_scalar;

enum { XACT_FFI_ATTR_SCALAR = 3 };

typedef struct {
    size_t struct_size;
    xact_ffi_extension *extension_start;
    int64_t size;
    int *types;
    xact_ffi_bytes **names;
    void **attrs;
} xact_ffi_attrs;

enum { XACT_FFI_STAGE_EXECUTE = 3 };

typedef struct {
    size_t struct_size;
    xact_ffi_extension *extension_start;
    const xact_ffi_api *api;
    void *ctx;
    int stage;
    xact_ffi_args args;
    xact_ffi_args rets; /* XLA_FFI_Rets has XLA_FFI_Args's layout */
    xact_ffi_attrs attrs;
} xact_ffi_call_frame;

#endif
