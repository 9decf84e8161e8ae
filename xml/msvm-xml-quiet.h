/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-xml-quiet.h: libxml2 kept from printing.
 *
 * libxml2 reports some errors without a parser context (the encoding
 * converters' "input conversion failed", I/O, XPath, saving) through the
 * calling thread's generic and structured error handlers, whose defaults
 * print on standard error.  Library code never prints: every call into
 * libxml2 that parses, evaluates or serializes runs between
 * msvm_xml_quiet_begin(), which installs handlers that drop the report, and
 * msvm_xml_quiet_end(), which puts back the caller's own.  The error itself
 * is still what the call returns (and in the parser context's last error),
 * so the caller's GError says what was wrong.
 *
 * libxml2 keeps these handlers per thread, so a quiet section affects only
 * the thread that runs it.  Private to the project (not installed).
 */
#pragma once

#include <glib.h>
#include <libxml/xmlerror.h>

G_BEGIN_DECLS

typedef struct {
  gboolean active;
  xmlGenericErrorFunc generic;
  void *generic_ctx;
  xmlStructuredErrorFunc structured;
  void *structured_ctx;
} MsvmXmlQuiet;

/* Saves the thread's handlers in @q and installs silent ones. */
void msvm_xml_quiet_begin(MsvmXmlQuiet *q);
/* Puts back the handlers @q saved (nothing when @q is not active). */
void msvm_xml_quiet_end(MsvmXmlQuiet *q);

/* The first error (level XML_ERR_ERROR or worse) a parse reported: only
 * the first, because libxml2 goes on after a namespace error and the last
 * error may be a later warning (the domain fuzz target found a document
 * that looked well-formed so). */
typedef struct {
  char *message;  /* stripped; NULL when none */
  int line;
  int column;
} MsvmXmlFirstError;

/* A structured error handler for a parser context (ctxt->sax->serror)
 * whose ctxt->_private points to a struct that starts with a
 * MsvmXmlFirstError; keeps the first error there.  g_free its message. */
void msvm_xml_keep_first_error(void *parser_context, xmlErrorPtr err);

/* For g_auto(MsvmXmlQuiet) q = MSVM_XML_QUIET_INIT; msvm_xml_quiet_begin(&q): the
 * caller's handlers come back when q goes out of scope. */
#define MSVM_XML_QUIET_INIT { 0 }
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(MsvmXmlQuiet, msvm_xml_quiet_end)

G_END_DECLS
