/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-xml-quiet.c: libxml2's generic and structured error handlers, replaced
 * by silent ones around every call into libxml2 (see msvm-xml-quiet.h).
 */
#include "config.h"

#include "msvm-xml-quiet.h"

#include <libxml/globals.h>
#include <libxml/parser.h>

static void
drop_generic(void *ctx, const char *msg, ...)
{
}

static void
drop_structured(void *ctx, xmlErrorPtr err)
{
}

void
msvm_xml_keep_first_error(void *parser_context, xmlErrorPtr err)
{
  xmlParserCtxtPtr ctxt = parser_context;
  MsvmXmlFirstError *first = ctxt != NULL ? ctxt->_private : NULL;

  if (first == NULL || err == NULL || first->message != NULL || err->level < XML_ERR_ERROR)
    return;
  first->message = g_strstrip(g_strdup(err->message != NULL ? err->message : "unknown error"));
  first->line = err->line;
  first->column = err->int2;
}

void
msvm_xml_quiet_begin(MsvmXmlQuiet *q)
{
  /* The handlers are per-thread state that xmlInitParser sets up. */
  xmlInitParser();
  q->generic = xmlGenericError;
  q->generic_ctx = xmlGenericErrorContext;
  q->structured = xmlStructuredError;
  q->structured_ctx = xmlStructuredErrorContext;
  q->active = TRUE;
  xmlSetGenericErrorFunc(NULL, drop_generic);
  xmlSetStructuredErrorFunc(NULL, drop_structured);
}

void
msvm_xml_quiet_end(MsvmXmlQuiet *q)
{
  if (!q->active)
    return;
  xmlSetGenericErrorFunc(q->generic_ctx, q->generic);
  xmlSetStructuredErrorFunc(q->structured_ctx, q->structured);
  q->active = FALSE;
}
