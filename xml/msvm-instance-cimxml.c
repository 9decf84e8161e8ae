/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-instance-cimxml.c: an Msvm_SecuritySettingData instance in CIM-XML
 * (DMTF DSP0201): <INSTANCE CLASSNAME=...> with PROPERTY, PROPERTY.ARRAY,
 * PROPERTY.REFERENCE and QUALIFIER children, as WMI writes it (plain or with
 * the ___SYSTEM properties first), or carried as escaped text / CDATA inside
 * a VALUE element, or wrapped in VALUE.OBJECT / VALUE.NAMEDINSTANCE.
 *
 * libxml2 is told: no network, no entity substitution, no DTD loading, the
 * text is UTF-8 whatever a declaration says, and never to print (and its
 * thread's error handlers are silent meanwhile, msvm-xml-quiet.h).  Any
 * DOCTYPE stops the parser in the SAX internalSubset callback, before its
 * internal subset is read, so no entity is ever declared, expanded or
 * fetched.  Nesting is bounded by libxml2's default depth limit (256
 * without XML_PARSE_HUGE, which is never set).
 */
#include "config.h"

#include "msvm-instance-private.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <string.h>

#include "msvm-error.h"
#include "msvm-xml-quiet.h"

typedef struct {
  MsvmXmlFirstError first;  /* (first: msvm_xml_keep_first_error) */
  gboolean doctype;
  int doctype_line;
} XmlState;

static void
on_internal_subset(void *user_data, const xmlChar *name, const xmlChar *external_id,
                   const xmlChar *system_id)
{
  xmlParserCtxtPtr ctxt = user_data;
  XmlState *st = ctxt->_private;

  if (st != NULL) {
    st->doctype = TRUE;
    st->doctype_line = xmlSAX2GetLineNumber(ctxt);
  }
  xmlStopParser(ctxt);
}

/* Parses @text as an XML document; NULL with 32773 when it is not
 * well-formed or has a DOCTYPE. */
static xmlDocPtr
read_xml(const MsvmInstanceText *t, GError **error)
{
  const int options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                      XML_PARSE_IGNORE_ENC | XML_PARSE_NOXINCNODE;
  g_auto(MsvmXmlQuiet) quiet = MSVM_XML_QUIET_INIT;
  xmlParserCtxtPtr ctxt;
  xmlDocPtr doc;
  XmlState st = { 0 };

  msvm_xml_quiet_begin(&quiet);
  ctxt = xmlNewParserCtxt();
  if (ctxt == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_OUT_OF_MEMORY, "cannot create an XML parser");
    return NULL;
  }
  ctxt->sax->serror = msvm_xml_keep_first_error;
  ctxt->sax->internalSubset = on_internal_subset;
  ctxt->sax->externalSubset = NULL;
  ctxt->sax->entityDecl = NULL;
  ctxt->sax->resolveEntity = NULL;
  ctxt->_private = &st;
  doc = xmlCtxtReadMemory(ctxt, t->text, (int)t->len, NULL, "UTF-8", options);
  if (doc != NULL && (st.doctype || !ctxt->wellFormed)) {
    xmlFreeDoc(doc);
    doc = NULL;
  }
  ctxt->_private = NULL;
  xmlFreeParserCtxt(ctxt);

  if (st.doctype) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "a DOCTYPE (line %d%s) is not accepted: no DTD or entity is ever processed",
                st.doctype_line, t->embedded ? " of the embedded instance text" : "");
  } else if (doc == NULL) {
    const char *msg = st.first.message != NULL ? st.first.message : "not well-formed";
    if (strstr(msg, "Excessive depth") != NULL)
      msg = "elements nested too deeply";
    if (t->embedded)
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "malformed XML at line %d, column %d of the embedded instance text: %s",
                  st.first.line, st.first.column, msg);
    else
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "malformed XML at line %d, column %d: %s", st.first.line, st.first.column, msg);
  }
  g_free(st.first.message);
  return doc;
}

/* libxml2 2.9 checks an element's attributes for duplicates pair by pair,
 * so a few megabytes of attributes on one element take minutes.  No CIM-XML
 * element has more than a handful; count them (the '=' outside quotes in
 * each tag) before libxml2 sees the text.  Linear, and conservative: a
 * malformed tag is left for libxml2 to report. */
#define MAX_ATTRIBUTES 64
/* Likewise libxml2 looks a prefix up through every namespace declaration in
 * scope, one by one: 250 nested elements declaring 60 namespaces each, then
 * 4 MiB of prefixed elements, took 35 s.  CIM-XML uses no namespaces; a few
 * are allowed for wrappers. */
#define MAX_NAMESPACES 16

static gboolean
check_attribute_counts(const MsvmInstanceText *t, GError **error)
{
  const char *s = t->text;
  const char *end = t->text + t->len;
  const char *p = s;
  guint namespaces = 0;

  while (p < end) {
    const char *lt = memchr(p, '<', (gsize)(end - p));
    const char *terminator = NULL;
    const char *q;
    guint n = 0;
    char quote = 0;

    if (lt == NULL)
      break;
    if (g_str_has_prefix(lt, "<!--"))
      terminator = "-->";
    else if (g_str_has_prefix(lt, "<![CDATA["))
      terminator = "]]>";
    else if (g_str_has_prefix(lt, "<?"))
      terminator = "?>";
    if (terminator != NULL) {
      q = strstr(lt + 2, terminator);
      p = q != NULL ? q + strlen(terminator) : end;
      continue;
    }
    for (q = lt + 1; q < end; q++) {
      if (quote != 0) {
        if (*q == quote)
          quote = 0;
      } else if (*q == '"' || *q == '\'') {
        quote = *q;
      } else if (*q == 'x' && g_ascii_isspace(q[-1]) && strncmp(q, "xmlns", 5) == 0) {
        if (++namespaces > MAX_NAMESPACES) {
          g_autofree char *where = msvm_instance_text_where(t, (gsize)(lt - s));
          g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                      "more than %d XML namespace declarations (one more on the element at %s)",
                      MAX_NAMESPACES, where);
          return FALSE;
        }
      } else if (*q == '=') {
        if (++n > MAX_ATTRIBUTES) {
          g_autofree char *where = msvm_instance_text_where(t, (gsize)(lt - s));
          g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                      "the element at %s has more than %d attributes", where, MAX_ATTRIBUTES);
          return FALSE;
        }
      } else if (*q == '>' || *q == '<') {
        break;
      }
    }
    p = q;
  }
  return TRUE;
}

/* ---- the tree ----------------------------------------------------------- */

static gboolean
is_element(xmlNodePtr node, const char *name)
{
  return node->type == XML_ELEMENT_NODE && g_ascii_strcasecmp((const char *)node->name, name) == 0;
}

/* Attribute by name, any letter case, white space around the value
 * dropped (every attribute read here holds a name); NULL when absent. */
static char *
get_attr(xmlNodePtr node, const char *name)
{
  for (xmlAttrPtr a = node->properties; a != NULL; a = a->next) {
    if (g_ascii_strcasecmp((const char *)a->name, name) == 0) {
      xmlChar *v = xmlNodeListGetString(node->doc, a->children, 1);
      char *copy = g_strstrip(g_strdup(v != NULL ? (const char *)v : ""));
      xmlFree(v);
      return copy;
    }
  }
  return NULL;
}

static gboolean
is_blank(const xmlChar *s)
{
  for (; s != NULL && *s; s++) {
    if (!g_ascii_isspace(*s))
      return FALSE;
  }
  return TRUE;
}

/* Comments, processing instructions and white space are allowed between
 * elements; other text is not. */
static gboolean
check_filler(xmlNodePtr node, const char *parent, GError **error)
{
  if (node->type == XML_COMMENT_NODE || node->type == XML_PI_NODE)
    return TRUE;
  if ((node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) &&
      is_blank(node->content))
    return TRUE;
  g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
              "unexpected content in <%s> at line %ld", parent, xmlGetLineNo(node));
  return FALSE;
}

static char *
node_text(xmlNodePtr node)
{
  xmlChar *v = xmlNodeGetContent(node);
  char *copy = g_strdup(v != NULL ? (const char *)v : "");

  xmlFree(v);
  return copy;
}

static gboolean
parse_property(MsvmInstanceBuilder *b, xmlNodePtr node, GError **error)
{
  g_autofree char *name = get_attr(node, "NAME");
  g_autofree char *type = NULL;
  g_autofree char *embedded = NULL;
  const char *prop_name;
  xmlNodePtr value = NULL;
  MsvmProp prop;

  if (name == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "<%s> at line %ld has no NAME", node->name, xmlGetLineNo(node));
    return FALSE;
  }
  if (!msvm_instance_builder_add(b, name, &prop, error))
    return FALSE;
  if (prop == MSVM_PROP_LAST)
    return TRUE;  /* unknown or WMI system property: ignored */
  prop_name = msvm_settings_props[prop].name;

  if (!is_element(node, "PROPERTY")) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INCORRECT_TYPE,
                "property %s is given as <%s>; its CIM type is a scalar %s",
                prop_name, node->name,
                msvm_instance_cim_type_name(msvm_settings_props[prop].type));
    return FALSE;
  }
  type = get_attr(node, "TYPE");
  if (type != NULL &&
      g_ascii_strcasecmp(type, msvm_instance_cim_type_name(msvm_settings_props[prop].type)) != 0) {
    g_autofree char *quoted = msvm_instance_quote(type);
    g_set_error(error, MSVM_ERROR, MSVM_RC_INCORRECT_TYPE,
                "property %s is declared TYPE=%s; its CIM type is %s", prop_name, quoted,
                msvm_instance_cim_type_name(msvm_settings_props[prop].type));
    return FALSE;
  }
  embedded = get_attr(node, "EmbeddedObject");
  if (embedded != NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INCORRECT_TYPE,
                "property %s is declared as an embedded object; its CIM type is %s",
                prop_name, msvm_instance_cim_type_name(msvm_settings_props[prop].type));
    return FALSE;
  }

  for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
    if (is_element(c, "QUALIFIER"))
      continue;
    if (is_element(c, "VALUE.NULL")) {
      /* Not in DSP0201's PROPERTY, but some writers use it: NULL. */
      if (value != NULL) {
        g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                    "property %s has more than one VALUE (line %ld)", prop_name, xmlGetLineNo(c));
        return FALSE;
      }
      value = c;
      continue;
    }
    if (is_element(c, "VALUE")) {
      if (value != NULL) {
        g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                    "property %s has more than one VALUE (line %ld)", prop_name, xmlGetLineNo(c));
        return FALSE;
      }
      value = c;
      continue;
    }
    if (c->type == XML_ELEMENT_NODE) {
      g_set_error(error, MSVM_ERROR,
                  g_ascii_strncasecmp((const char *)c->name, "VALUE.", 6) == 0
                    ? MSVM_RC_INCORRECT_TYPE : MSVM_RC_INVALID_PARAMETER,
                  "property %s holds <%s> (line %ld); its CIM type is a scalar %s",
                  prop_name, c->name, xmlGetLineNo(c),
                  msvm_instance_cim_type_name(msvm_settings_props[prop].type));
      return FALSE;
    }
    if (!check_filler(c, "PROPERTY", error)) {
      g_prefix_error(error, "property %s: ", prop_name);
      return FALSE;
    }
  }
  if (value == NULL || is_element(value, "VALUE.NULL"))
    return TRUE;  /* NULL: leaves the setting unchanged */

  for (xmlNodePtr c = value->children; c != NULL; c = c->next) {
    if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE &&
        c->type != XML_COMMENT_NODE && c->type != XML_PI_NODE) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INCORRECT_TYPE,
                  "property %s: VALUE at line %ld holds markup, not a %s",
                  prop_name, xmlGetLineNo(value),
                  msvm_instance_cim_type_name(msvm_settings_props[prop].type));
      return FALSE;
    }
  }
  {
    g_autofree char *text = node_text(value);
    return msvm_instance_builder_set_text(b, prop, text, error);
  }
}

static gboolean
parse_instance(MsvmInstanceBuilder *b, xmlNodePtr node, GError **error)
{
  g_autofree char *class_name = get_attr(node, "CLASSNAME");

  if (!msvm_instance_builder_begin(b, class_name, error))
    return FALSE;
  for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
    if (is_element(c, "QUALIFIER"))
      continue;
    if (is_element(c, "PROPERTY") || is_element(c, "PROPERTY.ARRAY") ||
        is_element(c, "PROPERTY.REFERENCE")) {
      if (!parse_property(b, c, error))
        return FALSE;
      continue;
    }
    if (c->type == XML_ELEMENT_NODE) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "unexpected element <%s> in <INSTANCE> at line %ld", c->name, xmlGetLineNo(c));
      return FALSE;
    }
    if (!check_filler(c, "INSTANCE", error))
      return FALSE;
  }
  return TRUE;
}

/* The only element child of @node (filler aside), or NULL with an error. */
static xmlNodePtr
only_child_element(xmlNodePtr node, GError **error)
{
  xmlNodePtr found = NULL;

  for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
    if (c->type == XML_ELEMENT_NODE) {
      if (found != NULL) {
        g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                    "<%s> at line %ld holds more than one element", node->name, xmlGetLineNo(node));
        return NULL;
      }
      found = c;
    } else if (!check_filler(c, (const char *)node->name, error)) {
      return NULL;
    }
  }
  if (found == NULL)
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "<%s> at line %ld holds no element", node->name, xmlGetLineNo(node));
  return found;
}

static gboolean
has_element_child(xmlNodePtr node)
{
  for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
    if (c->type == XML_ELEMENT_NODE)
      return TRUE;
  }
  return FALSE;
}

/* The INSTANCE of a VALUE.NAMEDINSTANCE (after its INSTANCENAME). */
static xmlNodePtr
named_instance_child(xmlNodePtr node, GError **error)
{
  xmlNodePtr found = NULL;

  for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
    if (is_element(c, "INSTANCENAME"))
      continue;
    if (c->type == XML_ELEMENT_NODE && found == NULL) {
      found = c;
      continue;
    }
    if (c->type == XML_ELEMENT_NODE) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "<%s> at line %ld holds more than one instance", node->name, xmlGetLineNo(node));
      return NULL;
    }
    if (!check_filler(c, (const char *)node->name, error))
      return NULL;
  }
  if (found == NULL)
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "<%s> at line %ld holds no instance", node->name, xmlGetLineNo(node));
  return found;
}

/* INSTANCE, VALUE.OBJECT > INSTANCE, or VALUE holding either as elements or
 * as text (escaped or CDATA), unwrapped once. */
static gboolean
parse_root(const MsvmInstanceText *t, MsvmInstanceBuilder *b, xmlNodePtr node, int hops,
           GError **error)
{
  if (hops > 2) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "<%s> at line %ld: too many wrappers around the instance",
                node->name, xmlGetLineNo(node));
    return FALSE;
  }
  if (is_element(node, "INSTANCE"))
    return parse_instance(b, node, error);
  if (is_element(node, "VALUE.NAMEDINSTANCE")) {
    xmlNodePtr child = named_instance_child(node, error);
    return child != NULL && parse_root(t, b, child, hops + 1, error);
  }
  if (is_element(node, "VALUE.OBJECT") ||
      (is_element(node, "VALUE") && has_element_child(node))) {
    xmlNodePtr child = only_child_element(node, error);
    return child != NULL && parse_root(t, b, child, hops + 1, error);
  }
  if (is_element(node, "VALUE")) {
    g_autofree char *text = node_text(node);
    MsvmInstanceText inner = { 0 };
    char *start = text;

    if (t->embedded) {
      g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                  "an embedded instance inside an embedded instance is not accepted");
      return FALSE;
    }
    /* White space and a byte-order mark around the embedded text. */
    g_strchomp(start);
    while (g_ascii_isspace(*start))
      start++;
    if (g_str_has_prefix(start, "\xef\xbb\xbf"))
      start += 3;
    inner.text = start;
    inner.len = strlen(start);
    inner.embedded = TRUE;
    if (!msvm_instance_parse_text(&inner, b, error)) {
      g_prefix_error(error, "in the instance embedded in <VALUE> at line %ld: ", xmlGetLineNo(node));
      return FALSE;
    }
    return TRUE;
  }
  g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
              "expected <INSTANCE CLASSNAME=\"Msvm_SecuritySettingData\">, found <%s> at line %ld",
              node->name, xmlGetLineNo(node));
  return FALSE;
}

gboolean
msvm_instance_parse_cim_xml(const MsvmInstanceText *t, MsvmInstanceBuilder *b, GError **error)
{
  MsvmInstanceText trimmed = *t;
  xmlDocPtr doc;
  xmlNodePtr root;
  gboolean ok;

  /* An XML declaration must come first; tolerate white space before it
   * (line numbers in messages then count from the declaration). */
  {
    const char *p = t->text;
    while (g_ascii_isspace(*p))
      p++;
    if (p != t->text && g_str_has_prefix(p, "<?xml")) {
      trimmed.len -= (gsize)(p - t->text);
      trimmed.text = p;
    }
  }

  if (!check_attribute_counts(&trimmed, error))
    return FALSE;
  doc = read_xml(&trimmed, error);
  if (doc == NULL)
    return FALSE;
  root = xmlDocGetRootElement(doc);
  if (root == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "the XML document has no element");
    xmlFreeDoc(doc);
    return FALSE;
  }
  ok = parse_root(t, b, root, 0, error);
  xmlFreeDoc(doc);
  return ok;
}
