/*
 * posix_fadvise(POSIX_FADV_DONTNEED) for Node, which has no binding for it. The object server
 * drops the page cache behind large bodies once they are durable, as Swift's drop_buffer_cache
 * does (see src/page-cache.ts for why). Built by the Makefile with the C compiler and Node's own
 * headers; a Node-API module, so one build serves every Node version from 20 on.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <node_api.h>

/* dropCache(fd, offset, length) -> 0, or the errno posix_fadvise returned. */
static napi_value drop_cache(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  int64_t offset, length;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "dropCache(fd, offset, length): three integers expected");
    return NULL;
  }
  napi_create_int32(env, posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_DONTNEED), &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "dropCache", NAPI_AUTO_LENGTH, drop_cache, NULL, &fn);
  napi_set_named_property(env, exports, "dropCache", fn);
  return exports;
}
