// The C ABI of libfusediff_cuda.so (cuda/include/fusediff_cuda.h): argument checks, device
// and memory management, and the calls into the kernel launchers (ops.h). No exception and
// no CUDA error leaves this file other than as an fdc_status plus fdc_last_error().
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "common.h"
#include "conv_layout.h"
#include "ops.h"

#ifndef FDC_CUDA_ARCHITECTURES
#define FDC_CUDA_ARCHITECTURES "?"
#endif

namespace fusediff::cuda {

namespace {
thread_local std::string t_last_error;

// Runs `body` (returning a status), turning any C++ exception into a status.
template <typename F>
int guarded(const char* what, F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return set_error(FDC_ERR_OUT_OF_MEMORY, std::string(what) + ": out of host memory");
  } catch (const std::exception& e) {
    return set_error(FDC_ERR_CUDA, std::string(what) + ": " + e.what());
  } catch (...) {
    return set_error(FDC_ERR_CUDA, std::string(what) + ": unknown error");
  }
}

bool valid_math(int math) { return math == FDC_MATH_FP32 || math == FDC_MATH_TF32 || math == FDC_MATH_BF16; }
}  // namespace

int set_error(int status, const std::string& message) {
  t_last_error = message;
  return status;
}

int from_cuda(cudaError_t error, const char* what) {
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  const std::string detail = std::string(cudaGetErrorName(error)) + ": " + cudaGetErrorString(error);
  switch (error) {
    case cudaErrorInsufficientDriver:
    case cudaErrorStubLibrary:
    case cudaErrorCallRequiresNewerDriver:
      return set_error(FDC_ERR_NO_DRIVER, std::string(what) + ": no usable CUDA driver (libcuda.so.1 missing, a stub, or "
                                                              "older than this CUDA " +
                                              std::to_string(CUDART_VERSION / 1000) + "." +
                                              std::to_string(CUDART_VERSION % 1000 / 10) + " runtime needs) (" + detail + ")");
    case cudaErrorNoDevice:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
      return set_error(FDC_ERR_NO_DEVICE, std::string(what) + ": no usable CUDA device (" + detail + ")");
    case cudaErrorMemoryAllocation:
      return set_error(FDC_ERR_OUT_OF_MEMORY, std::string(what) + ": out of device memory (" + detail + ")");
    default:
      return set_error(FDC_ERR_CUDA, std::string(what) + ": " + detail);
  }
}

int staging(fdc_context* ctx, int64_t bytes, void** out) {
  if (bytes > ctx->staging_bytes) {
    if (ctx->staging) {
      FDC_CUDA(cudaStreamSynchronize(ctx->stream), "staging");  // queued work may still read it
      FDC_CUDA(cudaFree(ctx->staging), "staging");
      ctx->staging = nullptr;
      ctx->staging_bytes = 0;
    }
    const int64_t grown = bytes < 4096 ? 4096 : bytes * 2;
    FDC_CUDA(cudaMalloc(&ctx->staging, static_cast<size_t>(grown)), "staging");
    ctx->staging_bytes = grown;
  }
  *out = ctx->staging;
  return FDC_OK;
}

// Host -> device from ordinary (pageable) host memory, complete when this returns: the caller
// may free or reuse `host` at once. (cudaMemcpyAsync from pageable memory may return before
// the source has been read; waiting on the stream makes the guarantee explicit.)
int upload_now(fdc_context* ctx, void* dst, const void* host, int64_t bytes, const char* what) {
  FDC_CUDA(cudaMemcpyAsync(dst, host, static_cast<size_t>(bytes), cudaMemcpyHostToDevice, ctx->stream), what);
  FDC_CUDA(cudaStreamSynchronize(ctx->stream), what);
  return FDC_OK;
}

}  // namespace fusediff::cuda

using namespace fusediff::cuda;

#define FDC_CONTEXT(ctx) FDC_REQUIRE((ctx) != nullptr, "null fdc_context")

extern "C" {

FDC_API uint32_t fdc_abi_version(void) { return FDC_ABI_VERSION; }

FDC_API const char* fdc_build_info(void) {
  static const std::string info = "CUDA runtime " + std::to_string(CUDART_VERSION / 1000) + "." +
                                  std::to_string(CUDART_VERSION % 1000 / 10) + " (static), kernels for " +
                                  FDC_CUDA_ARCHITECTURES;
  return info.c_str();
}

FDC_API const char* fdc_last_error(void) { return t_last_error.c_str(); }

FDC_API int fdc_device_count(int* count) {
  FDC_REQUIRE(count != nullptr, "fdc_device_count: null count");
  *count = 0;
  return guarded("cudaGetDeviceCount", [&] {
    int n = 0;
    FDC_CUDA(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
    if (n < 1) return set_error(FDC_ERR_NO_DEVICE, "cudaGetDeviceCount: no CUDA device");
    *count = n;
    return static_cast<int>(FDC_OK);
  });
}

FDC_API int fdc_device_properties(int device, fdc_device_props* out) {
  FDC_REQUIRE(out != nullptr, "fdc_device_properties: null output");
  return guarded("fdc_device_properties", [&] {
    int n = 0;
    FDC_CUDA(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
    if (device < 0 || device >= n)
      return set_error(FDC_ERR_NO_DEVICE, "CUDA device " + std::to_string(device) + " does not exist (" +
                                              std::to_string(n) + " device(s))");
    cudaDeviceProp prop;
    FDC_CUDA(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    std::memset(out, 0, sizeof(*out));
    std::memcpy(out->name, prop.name, std::min(sizeof(out->name), sizeof(prop.name)) - 1);
    out->major = prop.major;
    out->minor = prop.minor;
    out->multiprocessors = prop.multiProcessorCount;
    out->total_memory = static_cast<int64_t>(prop.totalGlobalMem);
    return static_cast<int>(FDC_OK);
  });
}

FDC_API int fdc_context_create(int device, fdc_context** out) {
  FDC_REQUIRE(out != nullptr, "fdc_context_create: null output");
  *out = nullptr;
  return guarded("fdc_context_create", [&] {
    fdc_device_props props;
    if (int s = fdc_device_properties(device, &props)) return s;
    if (props.major < 8)
      return set_error(FDC_ERR_UNSUPPORTED, std::string("CUDA device ") + std::to_string(device) + " (" + props.name +
                                                ") has compute capability " + std::to_string(props.major) + "." +
                                                std::to_string(props.minor) + "; fusediff needs 8.0 (Ampere) or newer");
    FDC_CUDA(cudaSetDevice(device), "cudaSetDevice");
    auto* ctx = new fdc_context();
    ctx->device = device;
    const cudaError_t e = cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
      delete ctx;
      return from_cuda(e, "cudaStreamCreate");
    }
    *out = ctx;
    return static_cast<int>(FDC_OK);
  });
}

FDC_API void fdc_context_destroy(fdc_context* ctx) {
  if (!ctx) return;
  cudaSetDevice(ctx->device);
  cudaStreamSynchronize(ctx->stream);
  if (ctx->staging) cudaFree(ctx->staging);
  cudaStreamDestroy(ctx->stream);
  delete ctx;
}

// Every call that touches memory or launches work first makes the context's device current
// on the calling thread (the addon calls from its worker threads).
#define FDC_ENTER(ctx)                                              \
  FDC_CONTEXT(ctx);                                                 \
  FDC_CUDA(cudaSetDevice((ctx)->device), "cudaSetDevice")

FDC_API int fdc_malloc(fdc_context* ctx, int64_t bytes, void** out) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(out != nullptr && bytes >= 0, "fdc_malloc: bad arguments");
  *out = nullptr;
  if (bytes == 0) return FDC_OK;
  FDC_CUDA(cudaMalloc(out, static_cast<size_t>(bytes)), "cudaMalloc");
  return FDC_OK;
}

FDC_API int fdc_free(fdc_context* ctx, void* p) {
  FDC_ENTER(ctx);
  if (!p) return FDC_OK;
  FDC_CUDA(cudaStreamSynchronize(ctx->stream), "fdc_free");
  FDC_CUDA(cudaFree(p), "cudaFree");
  return FDC_OK;
}

FDC_API int fdc_upload(fdc_context* ctx, void* dst, const void* host_src, int64_t bytes) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(bytes >= 0 && (bytes == 0 || (dst && host_src)), "fdc_upload: bad arguments");
  if (bytes == 0) return FDC_OK;
  return upload_now(ctx, dst, host_src, bytes, "upload");
}

FDC_API int fdc_download(fdc_context* ctx, void* host_dst, const void* src, int64_t bytes) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(bytes >= 0 && (bytes == 0 || (src && host_dst)), "fdc_download: bad arguments");
  if (bytes > 0)
    FDC_CUDA(cudaMemcpyAsync(host_dst, src, static_cast<size_t>(bytes), cudaMemcpyDeviceToHost, ctx->stream), "download");
  FDC_CUDA(cudaStreamSynchronize(ctx->stream), "download (kernels queued before it)");
  return FDC_OK;
}

FDC_API int fdc_memset_zero(fdc_context* ctx, void* dst, int64_t bytes) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(bytes >= 0 && (bytes == 0 || dst), "fdc_memset_zero: bad arguments");
  if (bytes > 0) FDC_CUDA(cudaMemsetAsync(dst, 0, static_cast<size_t>(bytes), ctx->stream), "memset");
  return FDC_OK;
}

FDC_API int fdc_synchronize(fdc_context* ctx) {
  FDC_ENTER(ctx);
  FDC_CUDA(cudaStreamSynchronize(ctx->stream), "synchronize (an earlier kernel failed)");
  return FDC_OK;
}

// --- Convolution ------------------------------------------------------------------------

FDC_API int64_t fdc_packed_conv_bytes(int out_c, int in_c, int kernel, int math) {
  if (out_c < 1 || in_c < 1 || kernel < 1 || !valid_math(math)) return -1;
  return static_cast<int64_t>(kernel) * kernel * in_c * out_c * (math == FDC_MATH_BF16 ? 2 : 4);
}

FDC_API int fdc_pack_conv(fdc_context* ctx, const float* oihw_host, int out_c, int in_c, int kernel, int math,
                          void* packed) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(oihw_host && packed && out_c > 0 && in_c > 0 && (kernel == 1 || kernel == 3) && valid_math(math),
              "fdc_pack_conv: bad arguments");
  return guarded("fdc_pack_conv", [&] {
    const int64_t n = static_cast<int64_t>(kernel) * kernel * in_c * out_c;
    std::vector<float> kco(static_cast<size_t>(n));
    pack_conv_kco(oihw_host, out_c, in_c, kernel, kco.data());
    if (math == FDC_MATH_BF16) {
      std::vector<uint16_t> bf(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) bf[i] = float_to_bf16_bits(kco[i]);
      return upload_now(ctx, packed, bf.data(), n * 2, "pack upload");
    }
    return upload_now(ctx, packed, kco.data(), n * 4, "pack upload");
  });
}

FDC_API int fdc_conv2d(fdc_context* ctx, const fdc_conv2d_params* p, const float* x, const void* packed, int math,
                       const fdc_epilogue* e, float* y) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(p && x && packed && e && y && valid_math(math), "fdc_conv2d: null argument or unknown math");
  FDC_REQUIRE(p->batch > 0 && p->in_h > 0 && p->in_w > 0 && p->in_c > 0 && p->out_h > 0 && p->out_w > 0 && p->out_c > 0,
              "fdc_conv2d: empty shape");
  FDC_REQUIRE((p->kernel == 1 || p->kernel == 3) && (p->stride == 1 || p->stride == 2),
              "fdc_conv2d: kernel must be 1 or 3 and stride 1 or 2");
  FDC_REQUIRE(!e->batch_bias || e->batch_bias_stride >= p->out_c, "fdc_conv2d: batch_bias_stride below out_c");
  return conv2d(ctx, *p, x, packed, math, *e, y);
}

// --- INT8 convolution -------------------------------------------------------------------

FDC_API int64_t fdc_packed_conv_int8_bytes(int out_c, int in_c, int kernel) {
  if (out_c < 1 || in_c < 1 || kernel < 1) return -1;
  return packed_conv_int8_bytes(out_c, in_c, kernel);
}

FDC_API int fdc_pack_conv_int8(fdc_context* ctx, const float* oihw_host, int out_c, int in_c, int kernel, void* packed) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(oihw_host && packed && out_c > 0 && in_c > 0 && (kernel == 1 || kernel == 3), "fdc_pack_conv_int8: bad arguments");
  return guarded("fdc_pack_conv_int8", [&] {
    const int64_t bytes = packed_conv_int8_bytes(out_c, in_c, kernel);
    std::vector<unsigned char> host(static_cast<size_t>(bytes));
    pack_conv_int8(oihw_host, out_c, in_c, kernel, host.data());
    return upload_now(ctx, packed, host.data(), bytes, "pack upload");
  });
}

FDC_API int64_t fdc_conv2d_int8_scratch_bytes(const fdc_conv2d_params* p) {
  if (!p || p->batch < 1 || p->in_h < 1 || p->in_w < 1 || p->in_c < 1) return -1;
  return conv2d_int8_scratch_bytes(*p);
}

FDC_API int fdc_conv2d_int8(fdc_context* ctx, const fdc_conv2d_params* p, const float* x, const void* packed,
                            const fdc_epilogue* e, float* y, void* scratch) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(p && x && packed && e && y && scratch, "fdc_conv2d_int8: null argument");
  FDC_REQUIRE(p->batch > 0 && p->in_h > 0 && p->in_w > 0 && p->in_c > 0 && p->out_h > 0 && p->out_w > 0 && p->out_c > 0,
              "fdc_conv2d_int8: empty shape");
  FDC_REQUIRE((p->kernel == 1 || p->kernel == 3) && (p->stride == 1 || p->stride == 2),
              "fdc_conv2d_int8: kernel must be 1 or 3 and stride 1 or 2");
  FDC_REQUIRE(p->batch <= 65535, "fdc_conv2d_int8: batch above 65535");
  return conv2d_int8(ctx, *p, x, packed, *e, y, scratch);
}

// --- GroupNorm, attention -----------------------------------------------------------------

FDC_API int fdc_group_norm(fdc_context* ctx, const fdc_group_norm_params* p, const float* x, float* y) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(p && x && y && p->gamma && p->beta, "fdc_group_norm: null argument");
  FDC_REQUIRE(p->batch > 0 && p->pixels > 0 && p->groups > 0 && p->channels % p->groups == 0,
              "fdc_group_norm: channels must be a multiple of groups");
  FDC_REQUIRE(p->batch <= 65535 && p->groups <= 65535, "fdc_group_norm: batch or groups above 65535");
  return group_norm(ctx, *p, x, y);
}

FDC_API int64_t fdc_attention_scratch_bytes(const fdc_attention_params* p) {
  if (!p || p->batch < 1 || p->tokens < 1 || p->heads < 1) return -1;
  return attention_scratch_bytes(*p);
}

FDC_API int fdc_attention(fdc_context* ctx, const fdc_attention_params* p, const float* qkv, float* out, void* scratch) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(p && qkv && out, "fdc_attention: null argument");
  FDC_REQUIRE(p->batch > 0 && p->tokens > 0 && p->heads > 0 && p->channels % p->heads == 0,
              "fdc_attention: channels must be a multiple of heads");
  FDC_REQUIRE(p->heads <= 65535 && p->batch <= 65535 && p->tokens <= 65535 * 64, "fdc_attention: too many heads, images or tokens");
  FDC_REQUIRE(scratch || attention_scratch_bytes(*p) == 0, "fdc_attention: null scratch");
  return attention(ctx, *p, qkv, out, scratch);
}

// --- Memory-bound ops ---------------------------------------------------------------------

FDC_API int fdc_nchw_to_nhwc(fdc_context* ctx, const float* x, int batch, int channels, int height, int width, int center,
                             float* y) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(x && y && batch > 0 && channels > 0 && height > 0 && width > 0, "fdc_nchw_to_nhwc: bad arguments");
  return nchw_to_nhwc(ctx, x, batch, channels, height, width, center != 0, y);
}

FDC_API int fdc_nhwc_to_nchw(fdc_context* ctx, const float* x, int batch, int height, int width, int channels,
                             const float* divisor, float* y) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(x && y && batch > 0 && channels > 0 && height > 0 && width > 0, "fdc_nhwc_to_nchw: bad arguments");
  return nhwc_to_nchw(ctx, x, batch, height, width, channels, divisor, y);
}

FDC_API int fdc_silu(fdc_context* ctx, const float* x, int64_t count, float* y) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(x && y && count >= 0, "fdc_silu: bad arguments");
  return count ? silu(ctx, x, count, y) : FDC_OK;
}

FDC_API int fdc_add(fdc_context* ctx, const float* x, int64_t count, float* y) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(x && y && count >= 0, "fdc_add: bad arguments");
  return count ? add(ctx, x, count, y) : FDC_OK;
}

FDC_API int fdc_upsample_nearest2x(fdc_context* ctx, const float* x, int batch, int height, int width, int channels,
                                   float* y) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(x && y && batch > 0 && height > 0 && width > 0 && channels > 0, "fdc_upsample_nearest2x: bad arguments");
  return upsample_nearest2x(ctx, x, batch, height, width, channels, y);
}

FDC_API int fdc_avg_pool2x2(fdc_context* ctx, const float* x, int batch, int height, int width, int channels, float* y) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(x && y && batch > 0 && height > 1 && width > 1 && channels > 0 && height % 2 == 0 && width % 2 == 0,
              "fdc_avg_pool2x2: bad arguments (height and width must be even)");
  return avg_pool2x2(ctx, x, batch, height, width, channels, y);
}

FDC_API int fdc_concat_channels(fdc_context* ctx, const float* a, int ca, const float* b, int cb, int64_t pixels,
                                float* y) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(a && b && y && ca > 0 && cb > 0 && pixels > 0, "fdc_concat_channels: bad arguments");
  return concat_channels(ctx, a, ca, b, cb, pixels, y);
}

// --- Sampler steps --------------------------------------------------------------------------

FDC_API int fdc_affine_step(fdc_context* ctx, const fdc_affine_step_params* p, const float* x, float* out,
                            float* x0_out) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(p && out && p->batch > 0 && p->channels > 0 && p->pixels > 0, "fdc_affine_step: bad arguments");
  if (p->clamp != FDC_CLAMP_NONE && p->clamp != FDC_CLAMP_RANGE)
    return set_error(FDC_ERR_UNSUPPORTED, "fdc_affine_step: dynamic thresholding runs on the CPU only");
  FDC_REQUIRE(p->noise_scale >= FDC_NOISE_CONSTANT && p->noise_scale <= FDC_NOISE_EXPV, "fdc_affine_step: noise_scale");
  const double* arrays[10] = {p->ax, p->am, p->az, p->bx, p->bm, p->b0, p->bz, p->by, p->e0, p->e1};
  auto any_nonzero = [&](const double* a) {
    if (a)
      for (int64_t b = 0; b < p->batch; ++b)
        if (a[b] != 0) return true;
    return false;
  };
  FDC_REQUIRE(x || (!any_nonzero(p->ax) && !any_nonzero(p->bx)), "fdc_affine_step: x is needed");
  FDC_REQUIRE(p->m || (!any_nonzero(p->am) && !any_nonzero(p->bm)), "fdc_affine_step: the model output is needed");
  FDC_REQUIRE(p->y || !any_nonzero(p->by), "fdc_affine_step: y is needed");
  FDC_REQUIRE(p->z || p->seeds || (!any_nonzero(p->az) && !any_nonzero(p->bz)), "fdc_affine_step: noise is needed");
  FDC_REQUIRE(!p->m || p->m_channels == p->channels || p->m_channels == 2 * p->channels,
              "fdc_affine_step: the model output has C or 2C channels");
  FDC_REQUIRE(p->noise_scale == FDC_NOISE_CONSTANT || (p->m && p->m_channels == 2 * p->channels),
              "fdc_affine_step: a variance-scaled noise needs a 2C-channel model output");
  return guarded("fdc_affine_step", [&] {
    // One host block [10][batch] doubles + [batch] seeds, uploaded to the context's staging.
    const int64_t nb = p->batch;
    std::vector<unsigned char> host(static_cast<size_t>(nb * 10 * 8 + nb * 8), 0);
    StepCoefficients c;
    double* values = reinterpret_cast<double*>(host.data());
    for (int j = 0; j < 10; ++j)
      if (arrays[j]) {
        std::memcpy(values + j * nb, arrays[j], static_cast<size_t>(nb) * 8);
        c.present |= 1u << j;
      }
    if (p->seeds && !p->z) std::memcpy(host.data() + nb * 80, p->seeds, static_cast<size_t>(nb) * 8);
    void* dev = nullptr;
    if (int s = staging(ctx, static_cast<int64_t>(host.size()), &dev)) return s;
    if (int s = upload_now(ctx, dev, host.data(), static_cast<int64_t>(host.size()), "step upload")) return s;
    c.values = static_cast<const double*>(dev);
    if (p->seeds && !p->z) c.seeds = reinterpret_cast<const uint64_t*>(static_cast<unsigned char*>(dev) + nb * 80);
    return affine_step(ctx, *p, c, x, out, x0_out);
  });
}

FDC_API int fdc_langevin_step(fdc_context* ctx, const fdc_langevin_params* p, const float* x, float* out,
                              float* mean_out, double* step_sizes) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(p && x && out && p->m && p->score_scale && p->batch > 0 && p->channels > 0 && p->pixels > 0,
              "fdc_langevin_step: bad arguments");
  FDC_REQUIRE(p->z || p->seeds, "fdc_langevin_step: noise is needed");
  FDC_REQUIRE(p->batch <= 65535, "fdc_langevin_step: batch above 65535");
  return guarded("fdc_langevin_step", [&] {
    const int64_t B = p->batch;
    // [score_scale][alpha][seeds][norms 2B][eps]: 6B doubles.
    std::vector<double> host(static_cast<size_t>(6 * B), 0.0);
    std::memcpy(host.data(), p->score_scale, static_cast<size_t>(B) * 8);
    if (p->alpha) std::memcpy(host.data() + B, p->alpha, static_cast<size_t>(B) * 8);
    if (!p->z) std::memcpy(host.data() + 2 * B, p->seeds, static_cast<size_t>(B) * 8);
    void* dev = nullptr;
    if (int s = staging(ctx, 6 * B * 8, &dev)) return s;
    if (int s = upload_now(ctx, dev, host.data(), static_cast<int64_t>(host.size()) * 8, "langevin upload")) return s;
    if (int s = langevin_step(ctx, *p, static_cast<const double*>(dev), p->alpha != nullptr, p->z == nullptr, x, out,
                              mean_out))
      return s;
    if (step_sizes) {
      FDC_CUDA(cudaMemcpyAsync(step_sizes, static_cast<const double*>(dev) + 5 * B, static_cast<size_t>(B) * 8,
                               cudaMemcpyDeviceToHost, ctx->stream),
               "langevin step sizes");
      FDC_CUDA(cudaStreamSynchronize(ctx->stream), "langevin step sizes");
    }
    return static_cast<int>(FDC_OK);
  });
}

FDC_API int fdc_philox_normal(fdc_context* ctx, float* out, int64_t batch, int64_t per_item, const uint64_t* seeds,
                              uint64_t stream) {
  FDC_ENTER(ctx);
  FDC_REQUIRE(out && seeds && batch > 0 && per_item > 0, "fdc_philox_normal: bad arguments");
  return guarded("fdc_philox_normal", [&] {
    void* dev = nullptr;
    if (int s = staging(ctx, batch * 8, &dev)) return s;
    if (int s = upload_now(ctx, dev, seeds, batch * 8, "seeds upload")) return s;
    return philox_normal(ctx, out, batch, per_item, static_cast<const uint64_t*>(dev), stream);
  });
}

}  // extern "C"
