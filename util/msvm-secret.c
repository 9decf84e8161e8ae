/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-secret.c: secret buffers and the process settings that protect them.
 */
#include "msvm-secret.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "msvm-io.h"

void
msvm_wipe(void *buf, gsize len)
{
  if (buf != NULL && len > 0)
    explicit_bzero(buf, len);
}

/* A secret buffer is a private anonymous mapping, so that MADV_DONTDUMP
 * covers it and nothing else.  Its length rounded up to pages is kept in
 * front of it. */
#define HEADER_SIZE 16

static gsize
mapping_size(gsize len)
{
  gsize page = (gsize)sysconf(_SC_PAGESIZE);
  if (len > G_MAXSIZE - HEADER_SIZE - page)
    g_error("msvm_secret_alloc: %" G_GSIZE_FORMAT " bytes is too large", len);
  return (len + HEADER_SIZE + page - 1) / page * page;
}

gpointer
msvm_secret_alloc(gsize len)
{
  gsize size = mapping_size(len);
  guint8 *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

  if (base == MAP_FAILED)
    g_error("msvm_secret_alloc: cannot map %" G_GSIZE_FORMAT " bytes: %s", size,
            g_strerror(errno));
  /* (best effort: a kernel without it still gets RLIMIT_CORE 0 and
   * PR_SET_DUMPABLE 0 from msvm_secret_protect_process) */
  (void)madvise(base, size, MADV_DONTDUMP);
  memcpy(base, &size, sizeof(size));
  return base + HEADER_SIZE;
}

void
msvm_secret_free(gpointer buf, gsize len)
{
  guint8 *base;
  gsize size;

  if (buf == NULL)
    return;
  base = (guint8 *)buf - HEADER_SIZE;
  memcpy(&size, base, sizeof(size));
  /* (only what was written: the rest of the mapping was never touched,
   * and touching it would allocate it) */
  msvm_wipe(buf, MIN(len, size - HEADER_SIZE));
  munmap(base, size);
}

void
msvm_secret_text_free(char *text)
{
  if (text == NULL)
    return;
  msvm_wipe(text, strlen(text));
  g_free(text);
}

typedef struct {
  gpointer buf;
  gsize len;       /* the bytes ever written */
} SecretBlock;

static void
secret_block_free(gpointer data)
{
  SecretBlock *block = data;
  msvm_secret_free(block->buf, block->len);
  g_free(block);
}

static GBytes *
bytes_take(gpointer buf, gsize used)
{
  SecretBlock *block = g_new(SecretBlock, 1);
  block->buf = buf;
  block->len = used;
  return g_bytes_new_with_free_func(buf, used, secret_block_free, block);
}

GBytes *
msvm_secret_bytes_new(gconstpointer data, gsize len)
{
  gpointer buf = msvm_secret_alloc(len);
  if (len > 0)
    memcpy(buf, data, len);
  return bytes_take(buf, len);
}

typedef struct {
  guint8 *data;
  gsize len;
} TakenBlock;

static void
taken_block_free(gpointer data)
{
  TakenBlock *block = data;
  msvm_wipe(block->data, block->len);
  g_free(block->data);
  g_free(block);
}

GBytes *
msvm_secret_bytes_new_take(guint8 *data, gsize len)
{
  TakenBlock *block = g_new(TakenBlock, 1);
  block->data = data;
  block->len = len;
  return g_bytes_new_with_free_func(data, len, taken_block_free, block);
}

gboolean
msvm_secret_read_fd_bounded(int fd, gsize max_len, GBytes **ret_bytes, gboolean *ret_truncated)
{
  /* one byte more than allowed tells "more" from "exactly max_len" */
  gsize cap = max_len + 1;
  guint8 *buf = msvm_secret_alloc(cap);
  gsize got = 0;

  if (!msvm_read_full(fd, buf, cap, &got)) {
    int saved = errno;
    msvm_secret_free(buf, got);
    errno = saved;
    return FALSE;
  }
  *ret_truncated = got > max_len;
  if (got > max_len)
    msvm_wipe(buf + max_len, got - max_len);
  *ret_bytes = bytes_take(buf, MIN(got, max_len));
  return TRUE;
}

gboolean
msvm_secret_read_fd(int fd, gsize max_len, GBytes **ret_bytes, gboolean *ret_too_long)
{
  GBytes *bytes = NULL;
  gboolean more = FALSE;

  *ret_too_long = FALSE;
  if (!msvm_secret_read_fd_bounded(fd, max_len, &bytes, &more))
    return FALSE;
  if (more) {
    g_bytes_unref(bytes);
    *ret_too_long = TRUE;
    errno = EFBIG;
    return FALSE;
  }
  *ret_bytes = bytes;
  return TRUE;
}

gboolean
msvm_secret_protect_process(void)
{
  struct rlimit none = { 0, 0 };

  if (setrlimit(RLIMIT_CORE, &none) != 0)
    return FALSE;
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    return FALSE;
  return TRUE;
}
