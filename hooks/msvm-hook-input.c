/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-hook-input.c: the hook's first stage reading the domain XML on its
 * standard input and searching it for the project's namespace with memmem()
 * (see msvm-security-hook.c).  No GLib: libc only.
 */
#include "config.h"

#include "msvm-hook-input.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msvm-domain.h" /* MSVM_METADATA_NS (macro only: nothing is linked) */
#include "msvm-io.h"     /* (libc only: the first stage compiles it in) */

#define NS_LEN (sizeof(MSVM_METADATA_NS) - 1)

int
msvm_hook_read_input(int fd, size_t first_cap, size_t max_keep, char **ret_buf,
                     size_t *ret_len)
{
  /* The window kept across reads needs a buffer of at least NS_LEN bytes. */
  size_t cap = first_cap < NS_LEN ? NS_LEN : first_cap, len = 0, scanned = 0;
  char *buf = malloc(cap + 1);
  int found = 0, overflow = 0;

  *ret_buf = NULL;
  *ret_len = 0;
  if (buf == NULL)
    return -1;
  for (;;) {
    size_t got = 0;
    bool ok;
    if (len == cap) {
      if (cap >= max_keep || overflow) {
        /* Keep only the last NS_LEN - 1 bytes to search across reads. */
        if (!found && len >= NS_LEN &&
            memmem(buf + scanned, len - scanned, MSVM_METADATA_NS, NS_LEN) != NULL)
          found = 1;
        memmove(buf, buf + len - (NS_LEN - 1), NS_LEN - 1);
        len = NS_LEN - 1;
        scanned = 0;
        overflow = 1;
      } else {
        char *nb;
        cap *= 2;
        nb = realloc(buf, cap + 1);
        if (nb == NULL) {
          free(buf);
          return -1;
        }
        buf = nb;
      }
    }
    ok = msvm_read_full(fd, buf + len, cap - len, &got);
    len += got;
    if (!ok) {
      int saved = errno;
      free(buf);
      errno = saved;
      return -1;
    }
    if (len < cap)
      break; /* the end of the input */
  }
  if (!found && memmem(buf + scanned, len - scanned, MSVM_METADATA_NS, NS_LEN) != NULL)
    found = 1;
  if (!found || overflow) {
    free(buf);
    return found;
  }
  buf[len] = '\0';
  *ret_buf = buf;
  *ret_len = len;
  return 1;
}
