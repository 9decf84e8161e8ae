/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-settings-format.c: an MsvmSettings written back as CIM-XML (the
 * plain shape a client builds) or as MOF (as WMI's GetText(MOF) writes it).
 * Both parse back with msvm_instance_parse() to the same model.
 */
#include "config.h"

#include "msvm-settings.h"

#include <stdlib.h>
#include <string.h>

#include "msvm-instance-private.h"

/* Element content: & < > escaped, and CR as a character reference, since a
 * literal CR would come back as LF after XML line-end normalization. */
static void
append_xml_text(GString *out, const char *text)
{
  for (const char *p = text; *p; p++) {
    switch (*p) {
    case '&': g_string_append(out, "&amp;"); break;
    case '<': g_string_append(out, "&lt;"); break;
    case '>': g_string_append(out, "&gt;"); break;
    case '\r': g_string_append(out, "&#13;"); break;
    default: g_string_append_c(out, *p); break;
    }
  }
}

char *
msvm_settings_format_cim_xml(const MsvmSettings *settings)
{
  GString *out = g_string_new("<INSTANCE CLASSNAME=\"Msvm_SecuritySettingData\">\n");

  for (int p = 0; p < MSVM_PROP_LAST; p++) {
    const MsvmPropInfo *info = &msvm_settings_props[p];
    const MsvmValue *v = &settings->values[p];

    g_string_append_printf(out, "  <PROPERTY NAME=\"%s\" TYPE=\"%s\">", info->name,
                           msvm_instance_cim_type_name(info->type));
    if (v->present) {
      g_string_append(out, "<VALUE>");
      if (info->type == MSVM_CIM_BOOLEAN)
        g_string_append(out, v->boolean ? "TRUE" : "FALSE");
      else
        append_xml_text(out, v->string != NULL ? v->string : "");
      g_string_append(out, "</VALUE>");
    }
    g_string_append(out, "</PROPERTY>\n");
  }
  g_string_append(out, "</INSTANCE>\n");
  return g_string_free(out, FALSE);
}

static void
append_mof_string(GString *out, const char *text)
{
  g_string_append_c(out, '"');
  for (const char *p = text; *p; p++) {
    guchar c = (guchar)*p;
    switch (c) {
    case '\\': g_string_append(out, "\\\\"); break;
    case '"': g_string_append(out, "\\\""); break;
    case '\n': g_string_append(out, "\\n"); break;
    case '\t': g_string_append(out, "\\t"); break;
    case '\r': g_string_append(out, "\\r"); break;
    case '\b': g_string_append(out, "\\b"); break;
    case '\f': g_string_append(out, "\\f"); break;
    default:
      if (c < 0x20 || c == 0x7f)
        g_string_append_printf(out, "\\x%04X", c);
      else
        g_string_append_c(out, (char)c);
      break;
    }
  }
  g_string_append_c(out, '"');
}

static int
compare_prop_names(const void *a, const void *b)
{
  return g_ascii_strcasecmp(msvm_settings_props[*(const int *)a].name,
                            msvm_settings_props[*(const int *)b].name);
}

char *
msvm_settings_format_mof(const MsvmSettings *settings)
{
  GString *out = g_string_new("instance of Msvm_SecuritySettingData\n{\n");
  int order[MSVM_PROP_LAST];

  /* Alphabetical, as WMI writes MOF. */
  for (int p = 0; p < MSVM_PROP_LAST; p++)
    order[p] = p;
  qsort(order, MSVM_PROP_LAST, sizeof(order[0]), compare_prop_names);
  for (int i = 0; i < MSVM_PROP_LAST; i++) {
    int p = order[i];
    const MsvmPropInfo *info = &msvm_settings_props[p];
    const MsvmValue *v = &settings->values[p];

    g_string_append_printf(out, "        %s = ", info->name);
    if (!v->present)
      g_string_append(out, "NULL");
    else if (info->type == MSVM_CIM_BOOLEAN)
      g_string_append(out, v->boolean ? "TRUE" : "FALSE");
    else
      append_mof_string(out, v->string != NULL ? v->string : "");
    g_string_append(out, ";\n");
  }
  g_string_append(out, "};\n");
  return g_string_free(out, FALSE);
}
