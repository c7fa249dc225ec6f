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
 *
 * writeFiles and publishFiles: the replication receiver's batch (src/sync.ts). Small received
 * files are created and written many per job, then published many per job with two syncfs calls
 * in place of an fdatasync and folder fsyncs per file: on this VM each system call costs tens of
 * microseconds, and a push of a partition of small objects was spending most of its time in them.
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

/* Rejects with an Error shaped as Node's own fs errors: code, errno (negative), syscall, path. */
static void reject_fs_error(napi_env env, napi_deferred deferred, int err, const char *syscall, const char *path) {
  if (err == 0) err = EIO;
  const char *code = uv_err_name(-err);
  char message[4096];
  snprintf(message, sizeof message, "%s: %s, %s '%s'", code, strerror(err), syscall, path ? path : "");
  napi_value msg, code_v, error, errno_v, syscall_v, path_v;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v);
  napi_create_error(env, code_v, msg, &error);
  napi_create_int32(env, -err, &errno_v);
  napi_set_named_property(env, error, "errno", errno_v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_v);
  napi_set_named_property(env, error, "syscall", syscall_v);
  if (path) {
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &path_v);
    napi_set_named_property(env, error, "path", path_v);
  }
  napi_reject_deferred(env, deferred, error);
}

static void link_and_sync_complete(napi_env env, napi_status status, void *data) {
  link_job *job = data;
  if (status == napi_ok && job->err == 0) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, job->deferred, undefined);
  } else {
    reject_fs_error(env, job->deferred, job->err, job->syscall ? job->syscall : "linkAndSync", job->path);
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

/* A list of strings from a JS array (malloc'd, each malloc'd); NULL on a failure. */
static char **string_list(napi_env env, napi_value array, uint32_t *count) {
  bool is_array = false;
  if (napi_is_array(env, array, &is_array) != napi_ok || !is_array || napi_get_array_length(env, array, count) != napi_ok) return NULL;
  char **list = calloc(*count + 1, sizeof *list);
  if (list == NULL) return NULL;
  for (uint32_t i = 0; i < *count; i++) {
    napi_value v;
    if (napi_get_element(env, array, i, &v) != napi_ok || (list[i] = string_arg(env, v)) == NULL) {
      for (uint32_t j = 0; j < i; j++) free(list[j]);
      free(list);
      return NULL;
    }
  }
  return list;
}

static void free_list(char **list, uint32_t count) {
  if (list == NULL) return;
  for (uint32_t i = 0; i < count; i++) free(list[i]);
  free(list);
}

/* The state of writeFiles and publishFiles jobs. */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  uint32_t count;
  char **paths;   /* writeFiles: the files to create; publishFiles: the tmp files */
  char **targets; /* publishFiles: where each goes */
  char *sync_dir; /* publishFiles: any folder on the filesystem to syncfs */
  napi_ref data_ref; /* writeFiles: the bodies, back to back */
  const char *data;
  uint32_t *lengths;
  unsigned char *made; /* publishFiles: 1 where the job made the target's folder */
  int err;
  const char *syscall;
  char *path;
} batch_job;

static void batch_fail(batch_job *job, int err, const char *syscall, const char *path) {
  job->err = err;
  job->syscall = syscall;
  job->path = strdup(path);
}

/* On the thread pool: creates each file (it must not exist), writes its body, closes it. */
static void write_files_execute(napi_env env, void *data) {
  (void)env;
  batch_job *job = data;
  const char *body = job->data;
  for (uint32_t i = 0; i < job->count; i++) {
    int fd = open(job->paths[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      batch_fail(job, errno, "open", job->paths[i]);
      return;
    }
    size_t left = job->lengths[i];
    const char *p = body;
    while (left > 0) {
      ssize_t n = write(fd, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        batch_fail(job, n < 0 ? errno : EIO, "write", job->paths[i]);
        close(fd);
        return;
      }
      p += n;
      left -= (size_t)n;
    }
    if (close(fd) != 0) {
      batch_fail(job, errno, "close", job->paths[i]);
      return;
    }
    body += job->lengths[i];
  }
}

static int sync_filesystem(batch_job *job) {
  int fd = open(job->sync_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    batch_fail(job, errno, "open", job->sync_dir);
    return -1;
  }
  int rc = syncfs(fd);
  int saved = errno;
  close(fd);
  if (rc != 0) {
    batch_fail(job, saved, "syncfs", job->sync_dir);
    return -1;
  }
  return 0;
}

/*
 * On the thread pool: syncfs (the tmp files' data and inodes are durable), then for each file
 * mkdir -p its folder and rename the tmp file into it, then syncfs again (the names are durable).
 * Two flushes for the whole batch instead of an fdatasync and two or more folder fsyncs per file.
 */
static void publish_files_execute(napi_env env, void *data) {
  (void)env;
  batch_job *job = data;
  if (sync_filesystem(job) != 0) return;
  for (uint32_t i = 0; i < job->count; i++) {
    char *dir = strdup(job->targets[i]);
    char *slash = dir == NULL ? NULL : strrchr(dir, '/');
    if (slash == NULL || slash == dir) {
      batch_fail(job, dir == NULL ? ENOMEM : EINVAL, "rename", job->targets[i]);
      free(dir);
      return;
    }
    *slash = '\0';
    for (int attempt = 0;; attempt++) {
      char *top = NULL;
      int err = make_folders(dir, &top);
      /* Whatever it made, it made the deepest folder, the target's own. */
      if (top != NULL) job->made[i] = 1;
      free(top);
      if (err != 0) {
        batch_fail(job, err, "mkdir", dir);
        free(dir);
        return;
      }
      if (rename(job->paths[i], job->targets[i]) == 0) break;
      /* A cleanup removed the (still empty) fresh folder between our mkdir and rename. */
      if (errno == ENOENT && attempt < 5 && access(job->paths[i], F_OK) == 0) continue;
      batch_fail(job, errno, "rename", job->targets[i]);
      free(dir);
      return;
    }
    free(dir);
  }
  sync_filesystem(job);
}

static void free_batch_job(napi_env env, batch_job *job) {
  if (job->data_ref != NULL) napi_delete_reference(env, job->data_ref);
  free_list(job->paths, job->count);
  free_list(job->targets, job->count);
  free(job->sync_dir);
  free(job->lengths);
  free(job->made);
  free(job->path);
  free(job);
}

static void batch_complete(napi_env env, napi_status status, void *data) {
  batch_job *job = data;
  if (status == napi_ok && job->err == 0) {
    napi_value result;
    if (job->made != NULL) napi_create_buffer_copy(env, job->count, job->made, NULL, &result);
    else napi_get_undefined(env, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    reject_fs_error(env, job->deferred, job->err, job->syscall ? job->syscall : "batch", job->path);
  }
  napi_delete_async_work(env, job->work);
  free_batch_job(env, job);
}

static napi_value queue_batch(napi_env env, batch_job *job, const char *name, napi_async_execute_callback execute) {
  napi_value promise = NULL, name_v;
  bool ok = napi_create_promise(env, &job->deferred, &promise) == napi_ok &&
            napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &name_v) == napi_ok &&
            napi_create_async_work(env, NULL, name_v, execute, batch_complete, job, &job->work) == napi_ok &&
            napi_queue_async_work(env, job->work) == napi_ok;
  if (!ok) {
    free_batch_job(env, job);
    napi_throw_error(env, NULL, "could not queue the job");
    return NULL;
  }
  return promise;
}

/* A zeroed job and the call's three arguments; NULL (with a TypeError thrown) on a failure. */
static batch_job *new_batch_job(napi_env env, napi_callback_info info, napi_value argv[3], const char *usage) {
  size_t argc = 3;
  batch_job *job = calloc(1, sizeof *job);
  if (job == NULL || napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3) {
    free(job);
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  return job;
}

/*
 * writeFiles(paths, bodies, lengths) -> Promise<void>: creates each path (O_EXCL) with its body,
 * the next lengths[i] bytes of the Buffer `bodies`. No fsync: publishFiles makes them durable.
 */
static napi_value write_files(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  batch_job *job = new_batch_job(env, info, argv, "writeFiles(paths, bodies, lengths) expected");
  if (job == NULL) return NULL;
  uint32_t nlengths = 0;
  bool is_buffer = false;
  void *bytes = NULL;
  size_t total = 0, sum = 0;
  job->paths = string_list(env, argv[0], &job->count);
  bool ok = job->paths != NULL && napi_is_buffer(env, argv[1], &is_buffer) == napi_ok && is_buffer &&
            napi_get_buffer_info(env, argv[1], &bytes, &total) == napi_ok &&
            napi_get_array_length(env, argv[2], &nlengths) == napi_ok && nlengths == job->count;
  if (ok) ok = (job->lengths = calloc(job->count + 1, sizeof *job->lengths)) != NULL;
  for (uint32_t i = 0; ok && i < job->count; i++) {
    napi_value v;
    ok = napi_get_element(env, argv[2], i, &v) == napi_ok && napi_get_value_uint32(env, v, &job->lengths[i]) == napi_ok;
    sum += job->lengths[i];
  }
  if (ok) ok = sum <= total && napi_create_reference(env, argv[1], 1, &job->data_ref) == napi_ok;
  if (!ok) {
    if (job->paths == NULL) job->count = 0;
    free_batch_job(env, job);
    napi_throw_type_error(env, NULL, "writeFiles(paths, bodies, lengths): strings, a Buffer, and one length per path within it expected");
    return NULL;
  }
  job->data = bytes;
  return queue_batch(env, job, "writeFiles", write_files_execute);
}

/*
 * publishFiles(syncDir, tmps, targets) -> Promise<Buffer>: syncfs, rename each tmp to its target
 * (making its folder), syncfs. The Buffer has a 1 for each target whose folder this job made.
 * On a failure the files before the failing one are published, the rest are not.
 */
static napi_value publish_files(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  batch_job *job = new_batch_job(env, info, argv, "publishFiles(syncDir, tmps, targets) expected");
  if (job == NULL) return NULL;
  uint32_t ntargets = 0;
  job->sync_dir = string_arg(env, argv[0]);
  job->paths = string_list(env, argv[1], &job->count);
  if (job->paths == NULL) job->count = 0;
  job->targets = job->paths == NULL ? NULL : string_list(env, argv[2], &ntargets);
  bool ok = job->sync_dir != NULL && job->paths != NULL && job->targets != NULL && ntargets == job->count;
  if (!ok && job->targets != NULL && ntargets != job->count) {
    free_list(job->targets, ntargets);
    job->targets = NULL;
  }
  if (ok) ok = (job->made = calloc(job->count + 1, 1)) != NULL;
  if (!ok) {
    free_batch_job(env, job);
    napi_throw_type_error(env, NULL, "publishFiles(syncDir, tmps, targets): a path and two arrays of paths of one length expected");
    return NULL;
  }
  return queue_batch(env, job, "publishFiles", publish_files_execute);
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "dropCache", NAPI_AUTO_LENGTH, drop_cache, NULL, &fn);
  napi_set_named_property(env, exports, "dropCache", fn);
  napi_create_function(env, "linkAndSync", NAPI_AUTO_LENGTH, link_and_sync, NULL, &fn);
  napi_set_named_property(env, exports, "linkAndSync", fn);
  napi_create_function(env, "writeFiles", NAPI_AUTO_LENGTH, write_files, NULL, &fn);
  napi_set_named_property(env, exports, "writeFiles", fn);
  napi_create_function(env, "publishFiles", NAPI_AUTO_LENGTH, publish_files, NULL, &fn);
  napi_set_named_property(env, exports, "publishFiles", fn);
  return exports;
}
