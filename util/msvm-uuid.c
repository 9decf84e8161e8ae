/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msvm-uuid.c: UUID text (see msvm-uuid.h). */
#include "msvm-uuid.h"

#include <string.h>

gboolean
msvm_uuid_parse(const char *text, guint8 ret_uuid[16])
{
  guint8 uuid[16];
  int n = 0;

  if (text == NULL)
    return FALSE;
  while (g_ascii_isspace(*text))
    text++;
  while (*text != '\0' && n < 16) {
    int high, low;
    if (*text == '-') {
      text++;
      continue;
    }
    high = g_ascii_xdigit_value(text[0]);
    low = high < 0 ? -1 : g_ascii_xdigit_value(text[1]);
    if (high < 0 || low < 0)
      return FALSE;
    uuid[n++] = (guint8)(high << 4 | low);
    text += 2;
  }
  while (g_ascii_isspace(*text))
    text++;
  if (n != 16 || *text != '\0')
    return FALSE;
  memcpy(ret_uuid, uuid, 16);
  return TRUE;
}

gboolean
msvm_uuid_equal_text(const char *a, const char *b)
{
  guint8 ua[16], ub[16];
  return msvm_uuid_parse(a, ua) && msvm_uuid_parse(b, ub) && memcmp(ua, ub, 16) == 0;
}

void
msvm_uuid_format(const guint8 uuid[16], char ret[MSVM_UUID_STRING_LEN + 1])
{
  g_snprintf(ret, MSVM_UUID_STRING_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7],
             uuid[8], uuid[9], uuid[10], uuid[11], uuid[12], uuid[13], uuid[14], uuid[15]);
}

char *
msvm_uuid_to_string(const guint8 uuid[16])
{
  char text[MSVM_UUID_STRING_LEN + 1];
  msvm_uuid_format(uuid, text);
  return g_strdup(text);
}
