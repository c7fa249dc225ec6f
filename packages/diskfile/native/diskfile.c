/*
 * The diskfile's two calls that Node has no binding for. Built by the Makefile with the C compiler
 * and Node's own headers; a Node-API module, so one build serves every Node version from 20 on.
 *
 * dropCache: posix_fadvise(POSIX_FADV_DONTNEED). The object server drops the page cache behind
 * large bodies once they are durable, as Swift's drop_buffer_cache does (src/page-cache.ts).
 *
 * linkAndSync: the end of a write (src/manager.ts publish) in one job on libuv's thread pool
 * instead of one job per call: make the hash folder if missing, link the synced tmp file into it
 * (rename over a file of the same name), fsync the folders whose entries changed, unlink the tmp
 * name. Every thread-
 * pool job costs a wake-up on each side, which this VM makes expensive (bench/RESULTS.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

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

#define MAX_SYNC_DIRS 8

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *tmp;
  char *target;
  char *dirs[MAX_SYNC_DIRS];
  int ndirs;
  /* The first failure: its errno, the call and the path it was about. */
  int err;
  const char *syscall;
  char *path;
} link_job;

static char *string_arg(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s == NULL) return NULL;
  if (napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    return NULL;
  }
  return s;
}

static void fail(link_job *job, int err, const char *syscall, const char *path) {
  job->err = err;
  job->syscall = syscall;
  job->path = strdup(path);
}

/* Keeps in *top the shallowest of the folders created so far (malloc'd). */
static void note_created(char **top, const char *dir) {
  if (*top != NULL && strlen(*top) <= strlen(dir)) return;
  free(*top);
  *top = strdup(dir);
}

/* mkdir -p: 0 or an errno; every folder it creates is noted in *top. */
static int make_folders(const char *dir, char **top) {
  if (mkdir(dir, 0777) == 0) {
    note_created(top, dir);
    return 0;
  }
  if (errno == EEXIST) return 0;
  if (errno != ENOENT) return errno;
  char *parent = strdup(dir);
  if (parent == NULL) return ENOMEM;
  char *slash = strrchr(parent, '/');
  if (slash == NULL || slash == parent) {
    free(parent);
    return ENOENT;
  }
  *slash = '\0';
  int err = make_folders(parent, top);
  free(parent);
  if (err != 0) return err;
  if (mkdir(dir, 0777) == 0) {
    note_created(top, dir);
    return 0;
  }
  return errno == EEXIST ? 0 : errno;
}

static int fsync_folder(link_job *job, const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    /* Only possible if a newer write already made our file obsolete and emptied the folder. */
    if (errno == ENOENT) return 0;
    fail(job, errno, "open", dir);
    return -1;
  }
  int rc = fsync(fd);
  int saved = errno;
  close(fd);
  if (rc != 0) {
    fail(job, saved, "fsync", dir);
    return -1;
  }
  return 0;
}

/* On the thread pool: no Node-API calls here. */
static void link_and_sync_execute(napi_env env, void *data) {
  (void)env;
  link_job *job = data;
  char *hash_dir = strdup(job->target);
  char *top = NULL;
  char *slash = hash_dir == NULL ? NULL : strrchr(hash_dir, '/');
  if (slash == NULL || slash == hash_dir) {
    fail(job, hash_dir == NULL ? ENOMEM : EINVAL, "link", job->target);
    free(hash_dir);
    return;
  }
  *slash = '\0';
  for (int attempt = 0;; attempt++) {
    int err = make_folders(hash_dir, &top);
    if (err != 0) {
      fail(job, err, "mkdir", hash_dir);
      goto out;
    }
    if (link(job->tmp, job->target) == 0) break;
    if (errno == EEXIST) {
      /* The same timestamp again (a retried PUT, a replicated copy): replace it atomically. */
      if (rename(job->tmp, job->target) != 0) {
        fail(job, errno, "rename", job->target);
        goto out;
      }
      break;
    }
    /* A cleanup removed the (still empty) fresh folders between our mkdir and link. */
    if (errno == ENOENT && attempt < 5) continue;
    fail(job, errno, "link", job->target);
    goto out;
  }
  /* The link, then each new folder's entry in its parent, up to the parent of the topmost. */
  if (fsync_folder(job, hash_dir) != 0) goto out;
  if (top != NULL) {
    char *d = strdup(hash_dir);
    if (d == NULL) {
      fail(job, ENOMEM, "fsync", hash_dir);
      goto out;
    }
    for (;;) {
      char *slash = strrchr(d, '/');
      if (slash == NULL || slash == d) break;
      int at_top = strcmp(d, top) == 0;
      *slash = '\0';
      if (fsync_folder(job, d) != 0) break;
      if (at_top) break;
    }
    free(d);
    if (job->err != 0) goto out;
  }
  for (int i = 0; i < job->ndirs; i++) {
    if (fsync_folder(job, job->dirs[i]) != 0) goto out;
  }
  if (unlink(job->tmp) != 0 && errno != ENOENT) fail(job, errno, "unlink", job->tmp);
out:
  free(top);
  free(hash_dir);
}

static void link_and_sync_complete(napi_env env, napi_status status, void *data) {
  link_job *job = data;
  if (status == napi_ok && job->err == 0) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, job->deferred, undefined);
  } else {
    /* An Error shaped as Node's own fs errors: code, errno (negative), syscall, path. */
    int err = job->err != 0 ? job->err : EIO;
    const char *code = uv_err_name(-err);
    char message[4096];
    snprintf(message, sizeof message, "%s: %s, %s '%s'", code, strerror(err), job->syscall ? job->syscall : "linkAndSync",
             job->path ? job->path : "");
    napi_value msg, code_v, error, errno_v, syscall_v, path_v;
    napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
    napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v);
    napi_create_error(env, code_v, msg, &error);
    napi_create_int32(env, -err, &errno_v);
    napi_set_named_property(env, error, "errno", errno_v);
    napi_create_string_utf8(env, job->syscall ? job->syscall : "linkAndSync", NAPI_AUTO_LENGTH, &syscall_v);
    napi_set_named_property(env, error, "syscall", syscall_v);
    if (job->path) {
      napi_create_string_utf8(env, job->path, NAPI_AUTO_LENGTH, &path_v);
      napi_set_named_property(env, error, "path", path_v);
    }
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_async_work(env, job->work);
  free(job->path);
  free(job->tmp);
  free(job->target);
  for (int i = 0; i < job->ndirs; i++) free(job->dirs[i]);
  free(job);
}

/*
 * linkAndSync(tmp, target, moreDirs) -> Promise<void>; rejects with a Node-style fs error. Makes
 * target's folder (and any missing parent), links, fsyncs target's folder, the parent of every
 * folder it made and `moreDirs`, then unlinks tmp.
 */
static napi_value link_and_sync(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uint32_t ndirs = 0;
  bool is_array = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 ||
      napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[2], &ndirs) != napi_ok || ndirs > MAX_SYNC_DIRS) {
    napi_throw_type_error(env, NULL, "linkAndSync(tmp, target, dirs): two paths and at most 8 folders expected");
    return NULL;
  }
  link_job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "ENOMEM", "linkAndSync: out of memory");
    return NULL;
  }
  job->tmp = string_arg(env, argv[0]);
  job->target = string_arg(env, argv[1]);
  bool ok = job->tmp != NULL && job->target != NULL;
  for (uint32_t i = 0; ok && i < ndirs; i++) {
    napi_value d;
    ok = napi_get_element(env, argv[2], i, &d) == napi_ok && (job->dirs[i] = string_arg(env, d)) != NULL;
    if (ok) job->ndirs++;
  }
  napi_value promise = NULL, name;
  if (ok) ok = napi_create_promise(env, &job->deferred, &promise) == napi_ok;
  if (ok) ok = napi_create_string_utf8(env, "linkAndSync", NAPI_AUTO_LENGTH, &name) == napi_ok;
  if (ok) ok = napi_create_async_work(env, NULL, name, link_and_sync_execute, link_and_sync_complete, job, &job->work) == napi_ok;
  if (ok) ok = napi_queue_async_work(env, job->work) == napi_ok;
  if (!ok) {
    /* Nothing was queued (a failure after the promise was made leaves it unsettled, unreturned). */
    free(job->tmp);
    free(job->target);
    for (int i = 0; i < job->ndirs; i++) free(job->dirs[i]);
    free(job);
    napi_throw_type_error(env, NULL, "linkAndSync(tmp, target, dirs): paths must be strings");
    return NULL;
  }
  return promise;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "dropCache", NAPI_AUTO_LENGTH, drop_cache, NULL, &fn);
  napi_set_named_property(env, exports, "dropCache", fn);
  napi_create_function(env, "linkAndSync", NAPI_AUTO_LENGTH, link_and_sync, NULL, &fn);
  napi_set_named_property(env, exports, "linkAndSync", fn);
  return exports;
}
