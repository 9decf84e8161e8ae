/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-instance-private.h: what the instance parser's front end
 * (msvm-instance.c: size, encoding, dispatch) shares with its two syntaxes
 * (msvm-instance-cimxml.c, msvm-instance-mof.c).
 *
 * Both syntaxes feed one MsvmInstanceBuilder, which holds the rules that do
 * not depend on the syntax: class name, duplicated properties, CIM types,
 * InstanceID.
 */
#pragma once

#include "msvm-settings.h"

G_BEGIN_DECLS

/* The input after conversion to UTF-8 (NUL-terminated, valid UTF-8, no NUL
 * inside), and what is needed to map a position in it back to a byte offset
 * in the caller's input. */
typedef struct {
  const char *text;
  gsize len;
  gsize bom_len;      /* bytes of byte-order mark before text in the input */
  gboolean utf16;     /* the input was UTF-16 (2 or 4 bytes per character) */
  gboolean embedded;  /* text taken out of a VALUE element: positions are
                         relative to that text, not to the input */
} MsvmInstanceText;

/* Byte offset in the original input of position @pos of @t->text. */
gsize msvm_instance_text_offset(const MsvmInstanceText *t, gsize pos);

/* "line L, column C (byte offset N)" for position @pos of @t->text. */
char *msvm_instance_text_where(const MsvmInstanceText *t, gsize pos);

typedef struct {
  MsvmSettings *settings;
  GHashTable *seen;   /* ASCII-lowered property names already given */
  guint instances;    /* INSTANCE / "instance of" blocks seen */
} MsvmInstanceBuilder;

void msvm_instance_builder_init(MsvmInstanceBuilder *b);
void msvm_instance_builder_clear(MsvmInstanceBuilder *b);

/* A new instance starts: 32773 naming @class_name unless it is
 * Msvm_SecuritySettingData (any letter case), or when an instance was
 * already given. */
gboolean msvm_instance_builder_begin(MsvmInstanceBuilder *b, const char *class_name,
                                     GError **error);

/* Records that property @name is given: 32773 when it was given before
 * (case-insensitively).  *ret_prop is the known property, or MSVM_PROP_LAST
 * for one this project ignores. */
gboolean msvm_instance_builder_add(MsvmInstanceBuilder *b, const char *name,
                                   MsvmProp *ret_prop, GError **error);

/* Stores a value given as text: for a boolean "TRUE"/"FALSE" in any case
 * (surrounding white space ignored), else 32776; for a string the text
 * itself, which must consist of XML 1.0 characters (32773 otherwise). */
gboolean msvm_instance_builder_set_text(MsvmInstanceBuilder *b, MsvmProp prop,
                                        const char *text, GError **error);

/* Stores a boolean literal: 32776 unless @prop is a boolean. */
gboolean msvm_instance_builder_set_boolean(MsvmInstanceBuilder *b, MsvmProp prop,
                                           gboolean value, GError **error);

/* Checks that an instance was given and InstanceID (if present) names a VM;
 * then hands the settings over. */
gboolean msvm_instance_builder_finish(MsvmInstanceBuilder *b, MsvmSettings **ret_settings,
                                      GError **error);

/* "boolean" / "string" */
const char *msvm_instance_cim_type_name(MsvmCimType type);

/* A short, printable, quoted rendering of untrusted text for messages. */
char *msvm_instance_quote(const char *text);

/* Parses @t as CIM-XML or MOF, whichever its first non-blank character
 * says; t->embedded is TRUE when the text came out of a VALUE element, and
 * is not unwrapped any further. */
gboolean msvm_instance_parse_text(const MsvmInstanceText *t, MsvmInstanceBuilder *b,
                                  GError **error);
gboolean msvm_instance_parse_cim_xml(const MsvmInstanceText *t, MsvmInstanceBuilder *b,
                                     GError **error);
gboolean msvm_instance_parse_mof(const MsvmInstanceText *t, MsvmInstanceBuilder *b,
                                 GError **error);

G_END_DECLS
