/*
 * The diskfile's two calls that Node has no binding for. Built by the Makefile with the C compiler
 * and Node's own headers; a Node-API module, so one build serves every Node version from 20 on.
 *
 * dropCache: posix_fadvise(POSIX_FADV_DONTNEED). The object server drops the page cache behind
 * large bodies once they are durable, as Swift's drop_buffer_cache does (src/page-cache.ts).
 *
 * linkAndSync: the end of a write (src/manager.ts publish) in one job on libuv's thread pool
 * instead of one job per call: journal the suffix, syncfs (the entry durable before the link can
 * be), make the hash folder if missing, link the tmp file into it (rename over a file of the same
 * name), syncfs (the link and the new folders), journal the suffix again, unlink the tmp name.
 * Given a small write's whole file, the same job first creates and writes the tmp file (the first
 * syncfs makes it durable too): a small PUT, POST or DELETE is then one job. Every thread-pool job costs a wake-up on
 * each side, which this VM makes expensive (bench/RESULTS.md).
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
#include <sys/stat.h>
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

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *tmp;
  char *target;
  /* The partition's suffix journal (hashes.invalid) and the line to append to it. */
  char *journal;
  char *line;
  /* When set, the job first creates tmp with these bytes and makes them durable (a small write). */
  napi_ref body_ref;
  const char *body;
  size_t body_len;
  /* 1 when the job made target's folder. */
  int made;
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

/* Records the job's first failure (a later one is a consequence, or less telling). */
static void fail(link_job *job, int err, const char *syscall, const char *path) {
  if (job->err != 0) return;
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

/*
 * Creates path (it must not exist) with len bytes from p and closes it, unsynced (every caller
 * makes it durable with a syncfs): 0, or an errno with *syscall naming the call that failed.
 */
static int write_new_file(const char *path, const char *p, size_t len, const char **syscall) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    *syscall = "open";
    return errno;
  }
  int err = 0;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *syscall = "write";
      err = n < 0 ? errno : EIO;
      break;
    }
    p += n;
    len -= (size_t)n;
  }
  if (close(fd) != 0 && err == 0) {
    *syscall = "close";
    err = errno;
  }
  return err;
}

/* Creates tmp with the job's body (unsynced); -1 after a failure. */
static int create_tmp(link_job *job) {
  const char *syscall = NULL;
  int err = write_new_file(job->tmp, job->body, job->body_len, &syscall);
  if (err == 0) return 0;
  fail(job, err, syscall, job->tmp);
  return -1;
}

/* One append of the job's line (a few bytes with O_APPEND: a single atomic write). */
static int journal_append(link_job *job, int fd) {
  size_t len = strlen(job->line);
  ssize_t n;
  do n = write(fd, job->line, len);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t)len) {
    fail(job, n < 0 ? errno : EIO, "write", job->journal);
    return -1;
  }
  return 0;
}

static int journal_open(link_job *job) {
  int fd = open(job->journal, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail(job, errno, "open", job->journal);
  return fd;
}

/*
 * The second append (src/hash-cache.ts, points 1 and 3): append, then check that the path still
 * names the inode appended to; if a consolidation renamed the journal away meanwhile, append to
 * the live one. Closes fd.
 */
static int journal_append_checked(link_job *job, int fd) {
  for (;;) {
    struct stat mine, now;
    if (journal_append(job, fd) != 0 || fstat(fd, &mine) != 0) {
      if (job->err == 0) fail(job, errno, "fstat", job->journal);
      close(fd);
      return -1;
    }
    int rc = stat(job->journal, &now);
    if (rc == 0 && now.st_ino == mine.st_ino && now.st_dev == mine.st_dev) break;
    if (rc != 0 && errno != ENOENT) {
      fail(job, errno, "stat", job->journal);
      close(fd);
      return -1;
    }
    close(fd);
    if ((fd = journal_open(job)) < 0) return -1;
  }
  close(fd);
  return 0;
}

/* target's folder (malloc'd), or NULL after a failure. */
static char *folder_of(link_job *job) {
  char *dir = strdup(job->target);
  char *slash = dir == NULL ? NULL : strrchr(dir, '/');
  if (slash == NULL || slash == dir) {
    fail(job, dir == NULL ? ENOMEM : EINVAL, "link", job->target);
    free(dir);
    return NULL;
  }
  *slash = '\0';
  return dir;
}

/*
 * The first journal append, before the file becomes visible: the journal's fd (for the second)
 * or -1. The journal lives in the partition's folder, which the first write into a partition
 * makes here (with the hash folder; *top notes what was made).
 */
static int journal_first(link_job *job, const char *hash_dir, char **top) {
  int fd = open(job->journal, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 && errno == ENOENT) {
    int err = make_folders(hash_dir, top);
    if (err != 0) {
      fail(job, err, "mkdir", hash_dir);
      return -1;
    }
    fd = journal_open(job);
  } else if (fd < 0) {
    fail(job, errno, "open", job->journal);
  }
  if (fd >= 0 && journal_append(job, fd) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Makes the hash folder if missing and links tmp into it (rename over the same name); -1 after a failure. */
static int link_target(link_job *job, const char *hash_dir, char **top) {
  for (int attempt = 0;; attempt++) {
    int err = make_folders(hash_dir, top);
    if (err != 0) {
      fail(job, err, "mkdir", hash_dir);
      return -1;
    }
    if (link(job->tmp, job->target) == 0) break;
    if (errno == EEXIST) {
      /* The same timestamp again (a retried PUT, a replicated copy): replace it atomically. */
      if (rename(job->tmp, job->target) != 0) {
        fail(job, errno, "rename", job->target);
        return -1;
      }
      break;
    }
    /* A cleanup removed the (still empty) fresh folders between our mkdir and link. */
    if (errno == ENOENT && attempt < 5) continue;
    fail(job, errno, "link", job->target);
    return -1;
  }
  /* make_folders creates down to the deepest, so anything made means the hash folder is new. */
  job->made = *top != NULL;
  return 0;
}

/* The second (checked) journal append, then the tmp name goes; closes journal_fd. */
static void journal_second_and_unlink(link_job *job, int journal_fd) {
  if (journal_append_checked(job, journal_fd) != 0) return;
  /* Only now: a crash before this leaves the tmp file, whose name gets its suffix journaled. */
  if (unlink(job->tmp) != 0 && errno != ENOENT) fail(job, errno, "unlink", job->tmp);
}

/* On the thread pool: no Node-API calls here. */
static void link_and_sync_execute(napi_env env, void *data) {
  (void)env;
  link_job *job = data;
  if (job->body != NULL && create_tmp(job) != 0) return;
  char *hash_dir = folder_of(job);
  if (hash_dir == NULL) return;
  char *top = NULL;
  int journal_fd = journal_first(job, hash_dir, &top);
  if (journal_fd < 0) goto out;
  /* The first journal entry must be on disk before the link can be: ordered metadata does not
     give that (ext4 data=ordered forces out only blocks allocated in the committing transaction,
     and delayed allocation allocates the journal's block at writeback; any other fsync may commit
     our link meanwhile), and a power loss could keep the file and lose its entry: a stale suffix
     hash. One syncfs makes the entry and the tmp file's body durable (in place of the body's own
     fdatasync), a second the link and every new folder's entry (in place of up to three folder
     fsyncs). */
  if (syncfs(journal_fd) != 0) {
    fail(job, errno, "syncfs", hash_dir);
    goto out;
  }
  if (link_target(job, hash_dir, &top) != 0) goto out;
  /* A failure here is reported, but the file is visible now: its suffix is journaled again. */
  if (syncfs(journal_fd) != 0) fail(job, errno, "syncfs", hash_dir);
  journal_second_and_unlink(job, journal_fd);
  journal_fd = -1;
out:
  if (journal_fd >= 0) close(journal_fd);
  free(top);
  free(hash_dir);
}

/* An Error shaped as Node's own fs errors: code, errno (negative), syscall, path. */
static napi_value fs_error(napi_env env, int err, const char *syscall, const char *path) {
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
  return error;
}

static void reject_fs_error(napi_env env, napi_deferred deferred, int err, const char *syscall, const char *path) {
  napi_reject_deferred(env, deferred, fs_error(env, err, syscall, path));
}

/* The strings a link job owns (a commit job's items are link jobs too). */
static void free_link_strings(link_job *job) {
  free(job->path);
  free(job->tmp);
  free(job->target);
  free(job->journal);
  free(job->line);
}

static void free_link_job(napi_env env, link_job *job) {
  if (job->body_ref != NULL) napi_delete_reference(env, job->body_ref);
  free_link_strings(job);
  free(job);
}

static void link_and_sync_complete(napi_env env, napi_status status, void *data) {
  link_job *job = data;
  if (status == napi_ok && job->err == 0) {
    napi_value made;
    napi_create_int32(env, job->made, &made);
    napi_resolve_deferred(env, job->deferred, made);
  } else {
    reject_fs_error(env, job->deferred, job->err, job->syscall ? job->syscall : "linkAndSync", job->path);
  }
  napi_delete_async_work(env, job->work);
  free_link_job(env, job);
}

/*
 * linkAndSync(tmp, target, journal, line[, body]) -> Promise<0|1>; rejects with a Node-style fs
 * error. With `body` (a Buffer), first creates tmp with it. Appends `line` to `journal`, syncfs,
 * makes target's folder (and any missing parent), links, syncfs, appends `line` again (checked:
 * hash-cache.ts), then unlinks tmp. Resolves with 1 when it made target's folder (the file is alone in it).
 */
static napi_value link_and_sync(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  bool is_buffer = false;
  napi_valuetype body_type = napi_undefined;
  const char *usage = "linkAndSync(tmp, target, journal, line[, body]): four strings and a Buffer expected";
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      (argc == 5 && (napi_typeof(env, argv[4], &body_type) != napi_ok ||
                     (body_type != napi_undefined && (napi_is_buffer(env, argv[4], &is_buffer) != napi_ok || !is_buffer))))) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  link_job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "ENOMEM", "linkAndSync: out of memory");
    return NULL;
  }
  job->tmp = string_arg(env, argv[0]);
  job->target = string_arg(env, argv[1]);
  job->journal = string_arg(env, argv[2]);
  job->line = string_arg(env, argv[3]);
  bool ok = job->tmp != NULL && job->target != NULL && job->journal != NULL && job->line != NULL && job->line[0] != '\0';
  if (ok && is_buffer) {
    void *bytes = NULL;
    ok = napi_get_buffer_info(env, argv[4], &bytes, &job->body_len) == napi_ok &&
         napi_create_reference(env, argv[4], 1, &job->body_ref) == napi_ok;
    /* A zero-length Buffer's data pointer may be NULL: any non-NULL pointer marks "create". */
    job->body = bytes != NULL ? bytes : "";
  }
  napi_value promise = NULL, name;
  if (ok) ok = napi_create_promise(env, &job->deferred, &promise) == napi_ok;
  if (ok) ok = napi_create_string_utf8(env, "linkAndSync", NAPI_AUTO_LENGTH, &name) == napi_ok;
  if (ok) ok = napi_create_async_work(env, NULL, name, link_and_sync_execute, link_and_sync_complete, job, &job->work) == napi_ok;
  if (ok) ok = napi_queue_async_work(env, job->work) == napi_ok;
  if (!ok) {
    /* Nothing was queued (a failure after the promise was made leaves it unsettled, unreturned). */
    free_link_job(env, job);
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  return promise;
}

/*
 * commitFiles: the ends of many small writes of one filesystem in one job (group commit). Each
 * item is what linkAndSync does with a body, but the data and the names are made durable for all
 * of them at once: create every tmp file and journal each, syncfs, link each, syncfs, journal
 * each again and unlink its tmp name. Two flushes for the batch instead of an fdatasync and one or more
 * folder fsyncs per write.
 */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  uint32_t count;
  link_job *items; /* tmp, target, journal, line, body, made and the failure of each write */
  char *sync_dir;
  napi_ref data_ref; /* the array of bodies */
} commit_job;

/* syncfs through fd: 0 or an errno. */
static int syncfs_of(int fd) {
  return syncfs(fd) == 0 ? 0 : errno;
}

/* After a failed syncfs before any link: every write still going fails with it. */
static void fail_alive(commit_job *job, int err) {
  for (uint32_t i = 0; i < job->count; i++) fail(&job->items[i], err, "syncfs", job->sync_dir);
}

static void commit_execute(napi_env env, void *data) {
  (void)env;
  commit_job *job = data;
  uint32_t n = job->count;
  int *fds = malloc(n * sizeof *fds);
  char **dirs = calloc(n, sizeof *dirs);
  char **tops = calloc(n, sizeof *tops);
  if (fds == NULL || dirs == NULL || tops == NULL) {
    for (uint32_t i = 0; i < n; i++) fail(&job->items[i], ENOMEM, "commitFiles", job->items[i].target);
    goto out;
  }
  /* Opened before the files are written: syncfs reports the writeback errors recorded since its
     fd was opened (Linux 5.8 and later), so one opened later could miss a failed write's. */
  int sync_fd = open(job->sync_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sync_fd < 0) {
    int err = errno;
    for (uint32_t i = 0; i < n; i++) fail(&job->items[i], err, "open", job->sync_dir);
    goto out;
  }
  int alive = 0;
  for (uint32_t i = 0; i < n; i++) {
    fds[i] = -1;
    link_job *item = &job->items[i];
    if (create_tmp(item) != 0 || (dirs[i] = folder_of(item)) == NULL) continue;
    /* Journaled before the first syncfs, which makes the entries durable with the bodies: before
       any link can be (see link_and_sync_execute). */
    fds[i] = journal_first(item, dirs[i], &tops[i]);
    if (fds[i] >= 0) alive++;
  }
  int err = alive > 0 ? syncfs_of(sync_fd) : 0;
  if (err != 0) {
    /* Nothing linked: every write fails, its first entry costs a rehash at most. */
    fail_alive(job, err);
    for (uint32_t i = 0; i < n; i++) {
      if (fds[i] >= 0) close(fds[i]);
      fds[i] = -1;
    }
  }
  alive = 0;
  for (uint32_t i = 0; err == 0 && i < n; i++) {
    link_job *item = &job->items[i];
    if (fds[i] < 0 || item->err != 0) continue;
    if (link_target(item, dirs[i], &tops[i]) != 0) {
      close(fds[i]);
      fds[i] = -1;
      continue;
    }
    alive++;
  }
  err = alive > 0 ? syncfs_of(sync_fd) : 0;
  close(sync_fd);
  for (uint32_t i = 0; i < n; i++) {
    if (fds[i] < 0) continue;
    /* Linked, so visible: journaled again even when the syncfs failed (then the write fails). */
    if (err != 0) fail(&job->items[i], err, "syncfs", job->sync_dir);
    journal_second_and_unlink(&job->items[i], fds[i]);
    fds[i] = -1;
  }
out:
  for (uint32_t i = 0; dirs != NULL && i < n; i++) free(dirs[i]);
  for (uint32_t i = 0; tops != NULL && i < n; i++) free(tops[i]);
  free(dirs);
  free(tops);
  free(fds);
}

static void free_commit_job(napi_env env, commit_job *job) {
  if (job->data_ref != NULL) napi_delete_reference(env, job->data_ref);
  for (uint32_t i = 0; job->items != NULL && i < job->count; i++) free_link_strings(&job->items[i]);
  free(job->items);
  free(job->sync_dir);
  free(job);
}

/* Resolves with one entry per write: 1 or 0 (as linkAndSync's), or the write's fs error. */
static void commit_complete(napi_env env, napi_status status, void *data) {
  commit_job *job = data;
  napi_value results;
  napi_create_array_with_length(env, job->count, &results);
  for (uint32_t i = 0; i < job->count; i++) {
    link_job *item = &job->items[i];
    napi_value v;
    if (status == napi_ok && item->err == 0) napi_create_int32(env, item->made, &v);
    else v = fs_error(env, item->err, item->syscall ? item->syscall : "commitFiles", item->path);
    napi_set_element(env, results, i, v);
  }
  napi_resolve_deferred(env, job->deferred, results);
  napi_delete_async_work(env, job->work);
  free_commit_job(env, job);
}

/* The i-th string of a JS array into *out (malloc'd); false on a failure. */
static bool string_element(napi_env env, napi_value array, uint32_t i, char **out) {
  napi_value v;
  return napi_get_element(env, array, i, &v) == napi_ok && (*out = string_arg(env, v)) != NULL;
}

/*
 * commitFiles(syncDir, tmps, targets, journals, lines, bodies) -> Promise<(0|1|Error)[]>: write i
 * is tmps[i] created with the Buffer bodies[i], published as targets[i], its suffix journaled as
 * lines[i] in journals[i]. A write's failure fails it alone (but a failed syncfs fails every write
 * still going). `bodies` must not change until the promise settles.
 */
static napi_value commit_files(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  const char *usage = "commitFiles(syncDir, tmps, targets, journals, lines, bodies): a path, four arrays of strings and an array of Buffers, one per write";
  uint32_t count = 0, len = 0;
  bool is_array = false;
  commit_job *job = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 6 ||
      napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[1], &count) != napi_ok || count == 0)
    goto bad;
  for (int a = 2; a <= 5; a++) {
    if (napi_is_array(env, argv[a], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[a], &len) != napi_ok || len != count) goto bad;
  }
  job = calloc(1, sizeof *job);
  if (job == NULL || (job->items = calloc(count, sizeof *job->items)) == NULL || (job->sync_dir = string_arg(env, argv[0])) == NULL) goto bad;
  job->count = count;
  for (uint32_t i = 0; i < count; i++) {
    link_job *item = &job->items[i];
    napi_value body;
    bool is_buffer = false;
    void *bytes = NULL;
    if (!string_element(env, argv[1], i, &item->tmp) || !string_element(env, argv[2], i, &item->target) ||
        !string_element(env, argv[3], i, &item->journal) || !string_element(env, argv[4], i, &item->line) || item->line[0] == '\0' ||
        napi_get_element(env, argv[5], i, &body) != napi_ok || napi_is_buffer(env, body, &is_buffer) != napi_ok || !is_buffer ||
        napi_get_buffer_info(env, body, &bytes, &item->body_len) != napi_ok)
      goto bad;
    /* A zero-length Buffer's data pointer may be NULL: any non-NULL pointer marks "create". */
    item->body = bytes != NULL ? bytes : "";
  }
  /* The array holds the Buffers for the job's lifetime. */
  if (napi_create_reference(env, argv[5], 1, &job->data_ref) != napi_ok) goto bad;
  napi_value promise = NULL, name;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "commitFiles", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, commit_execute, commit_complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok)
    goto bad;
  return promise;
bad:
  if (job != NULL) free_commit_job(env, job);
  napi_throw_type_error(env, NULL, usage);
  return NULL;
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
  char *sync_dir; /* publishFiles: any folder on the filesystem to syncfs (or "fd N") */
  int sync_fd;    /* publishFiles: a folder fd to syncfs through instead, or -1 */
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
    const char *syscall = NULL;
    int err = write_new_file(job->paths[i], body, job->lengths[i], &syscall);
    if (err != 0) {
      batch_fail(job, err, syscall, job->paths[i]);
      return;
    }
    body += job->lengths[i];
  }
}

static int sync_filesystem(batch_job *job) {
  int fd = job->sync_fd >= 0 ? job->sync_fd : open(job->sync_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    batch_fail(job, errno, "open", job->sync_dir);
    return -1;
  }
  int err = syncfs_of(fd);
  if (fd != job->sync_fd) close(fd);
  if (err != 0) {
    batch_fail(job, err, "syncfs", job->sync_dir);
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
  napi_valuetype sync_type = napi_undefined;
  int32_t sync_fd = -1;
  job->sync_fd = -1;
  /* A number is a folder fd the caller opened before the files were written: syncfs reports the
     writeback errors recorded since its fd was opened (Linux 5.8 and later). */
  if (napi_typeof(env, argv[0], &sync_type) == napi_ok && sync_type == napi_number) {
    char label[32];
    if (napi_get_value_int32(env, argv[0], &sync_fd) == napi_ok && sync_fd >= 0) {
      snprintf(label, sizeof label, "fd %d", (int)sync_fd);
      job->sync_fd = sync_fd;
      job->sync_dir = strdup(label);
    }
  } else {
    job->sync_dir = string_arg(env, argv[0]);
  }
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
    napi_throw_type_error(env, NULL, "publishFiles(syncDir, tmps, targets): a path or folder fd and two arrays of paths of one length expected");
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
  napi_create_function(env, "commitFiles", NAPI_AUTO_LENGTH, commit_files, NULL, &fn);
  napi_set_named_property(env, exports, "commitFiles", fn);
  napi_create_function(env, "writeFiles", NAPI_AUTO_LENGTH, write_files, NULL, &fn);
  napi_set_named_property(env, exports, "writeFiles", fn);
  napi_create_function(env, "publishFiles", NAPI_AUTO_LENGTH, publish_files, NULL, &fn);
  napi_set_named_property(env, exports, "publishFiles", fn);
  return exports;
}
