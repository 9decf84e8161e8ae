/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-domain-xml.c: the document layer of the domain translation: safe
 * parsing, formatting that keeps a libvirt-written document byte for byte,
 * and tree edits that keep the document's indentation.
 */
#include "config.h"

#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlsave.h>

#include "msvm-domain-priv.h"
#include "msvm-error.h"
#include "msvm-xml-quiet.h"

xmlDocPtr
msvm_xml_parse(const char *xml, gsize len, const char *what,
               const char *root_ns, const char *root_name, GError **error)
{
  g_auto(MsvmXmlQuiet) quiet = MSVM_XML_QUIET_INIT;
  xmlParserCtxtPtr ctxt = NULL;
  xmlDocPtr doc = NULL;
  xmlNodePtr root;
  MsvmXmlFirstError first = { 0 };
  gboolean well_formed;

  if (xml == NULL || len == 0) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER, "%s is empty", what);
    return NULL;
  }
  if (len > MSVM_DOMAIN_MAX_SIZE || len > G_MAXINT) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "%s is larger than the limit of %u bytes", what, MSVM_DOMAIN_MAX_SIZE);
    return NULL;
  }
  msvm_xml_quiet_begin(&quiet);
  ctxt = xmlNewParserCtxt();
  if (ctxt == NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_OUT_OF_MEMORY, "out of memory parsing %s", what);
    return NULL;
  }
  ctxt->sax->serror = msvm_xml_keep_first_error;
  ctxt->_private = &first;
  /* No XML_PARSE_NOENT (entities are not substituted), no DTD loading, no
   * network; blanks are kept so that the document comes back as it was. */
  doc = xmlCtxtReadMemory(ctxt, xml, (int)len, NULL, NULL,
                          XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  /* Namespace-well-formed too: a document with an attribute named ":a"
   * parses, but a part of it copied elsewhere (the stash) would not parse
   * again (found by the domain fuzz target). */
  well_formed = doc != NULL && ctxt->wellFormed && ctxt->nsWellFormed && first.message == NULL;
  ctxt->_private = NULL;
  xmlFreeParserCtxt(ctxt);
  if (!well_formed) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "%s is not well-formed XML (line %d): %s", what, first.line,
                first.message != NULL ? first.message : "parse error");
    g_free(first.message);
    xmlFreeDoc(doc);
    return NULL;
  }
  if (doc->intSubset != NULL || doc->extSubset != NULL) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "%s has a DOCTYPE, which is not accepted", what);
    xmlFreeDoc(doc);
    return NULL;
  }
  root = xmlDocGetRootElement(doc);
  if (root == NULL || xmlStrcmp(root->name, BAD_CAST root_name) != 0 ||
      (root_ns == NULL) != (root->ns == NULL) ||
      (root_ns != NULL && xmlStrcmp(root->ns->href, BAD_CAST root_ns) != 0)) {
    g_set_error(error, MSVM_ERROR, MSVM_RC_INVALID_PARAMETER,
                "%s: the root element is not <%s>", what, root_name);
    xmlFreeDoc(doc);
    return NULL;
  }
  return doc;
}

/* ---- formatting */

static void
escape(GString *out, const xmlChar *text, gboolean attribute)
{
  for (const xmlChar *p = text; p && *p; p++) {
    switch (*p) {
    case '<': g_string_append(out, "&lt;"); break;
    case '>': g_string_append(out, "&gt;"); break;
    case '&': g_string_append(out, "&amp;"); break;
    case '\'': g_string_append(out, "&apos;"); break;
    case '"': g_string_append(out, "&quot;"); break;
    case '\r': g_string_append(out, "&#13;"); break;
    case '\n':
      g_string_append(out, attribute ? "&#10;" : "\n");
      break;
    case '\t':
      g_string_append(out, attribute ? "&#9;" : "\t");
      break;
    default:
      g_string_append_c(out, (char)*p);
    }
  }
}

static void
append_qname(GString *out, xmlNsPtr ns, const xmlChar *name)
{
  if (ns != NULL && ns->prefix != NULL) {
    g_string_append(out, (const char *)ns->prefix);
    g_string_append_c(out, ':');
  }
  g_string_append(out, (const char *)name);
}

static gboolean
is_domain_metadata(xmlNodePtr node)
{
  return node != NULL && node->type == XML_ELEMENT_NODE && node->ns == NULL &&
         xmlStrcmp(node->name, BAD_CAST "metadata") == 0 &&
         node->parent != NULL && node->parent->type == XML_ELEMENT_NODE &&
         node->parent->parent != NULL && node->parent->parent->type == XML_DOCUMENT_NODE;
}

static void
format_libxml(GString *out, xmlNodePtr node)
{
  g_auto(MsvmXmlQuiet) quiet = MSVM_XML_QUIET_INIT;
  xmlBufferPtr buf = xmlBufferCreate();

  if (buf == NULL)
    g_error("out of memory");
  msvm_xml_quiet_begin(&quiet);
  xmlNodeDump(buf, node->doc, node, 0, 0);
  g_string_append_len(out, (const char *)xmlBufferContent(buf), xmlBufferLength(buf));
  xmlBufferFree(buf);
}

void
msvm_xml_format_node(GString *out, xmlNodePtr node)
{
  switch (node->type) {
  case XML_ELEMENT_NODE: {
    gboolean metadata = is_domain_metadata(node);

    g_string_append_c(out, '<');
    append_qname(out, node->ns, node->name);
    for (xmlNsPtr ns = node->nsDef; ns != NULL; ns = ns->next) {
      g_string_append(out, " xmlns");
      if (ns->prefix != NULL) {
        g_string_append_c(out, ':');
        g_string_append(out, (const char *)ns->prefix);
      }
      g_string_append(out, "='");
      escape(out, ns->href, TRUE);
      g_string_append_c(out, '\'');
    }
    for (xmlAttrPtr a = node->properties; a != NULL; a = a->next) {
      xmlChar *value = xmlNodeGetContent((xmlNodePtr)a);
      g_string_append_c(out, ' ');
      append_qname(out, a->ns, a->name);
      g_string_append(out, "='");
      escape(out, value, TRUE);
      g_string_append_c(out, '\'');
      xmlFree(value);
    }
    if (node->children == NULL) {
      g_string_append(out, "/>");
      break;
    }
    g_string_append_c(out, '>');
    for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
      /* libvirt writes its <metadata> children with libxml2 */
      if (metadata && c->type == XML_ELEMENT_NODE)
        format_libxml(out, c);
      else
        msvm_xml_format_node(out, c);
    }
    g_string_append(out, "</");
    append_qname(out, node->ns, node->name);
    g_string_append_c(out, '>');
    break;
  }
  case XML_TEXT_NODE:
    escape(out, node->content, FALSE);
    break;
  case XML_CDATA_SECTION_NODE:
    g_string_append(out, "<![CDATA[");
    g_string_append(out, (const char *)node->content);
    g_string_append(out, "]]>");
    break;
  case XML_COMMENT_NODE:
    g_string_append(out, "<!--");
    g_string_append(out, (const char *)node->content);
    g_string_append(out, "-->");
    break;
  case XML_PI_NODE:
    g_string_append(out, "<?");
    g_string_append(out, (const char *)node->name);
    if (node->content != NULL && *node->content != '\0') {
      g_string_append_c(out, ' ');
      g_string_append(out, (const char *)node->content);
    }
    g_string_append(out, "?>");
    break;
  case XML_ENTITY_REF_NODE:
    g_string_append_c(out, '&');
    g_string_append(out, (const char *)node->name);
    g_string_append_c(out, ';');
    break;
  default:
    break;
  }
}

xmlDocPtr
msvm_domain_parse(const char *xml, gsize len, GError **error)
{
  return msvm_xml_parse(xml, len, "domain XML", NULL, "domain", error);
}

char *
msvm_domain_format(xmlDocPtr doc)
{
  GString *out = g_string_new(NULL);

  for (xmlNodePtr n = doc->children; n != NULL; n = n->next) {
    if (n->type == XML_DTD_NODE)
      continue;
    msvm_xml_format_node(out, n);
    g_string_append_c(out, '\n');
  }
  return g_string_free(out, FALSE);
}

/* ---- lookups */

static gboolean
is_element(xmlNodePtr n, const char *name)
{
  return n->type == XML_ELEMENT_NODE && n->ns == NULL &&
         (name == NULL || xmlStrcmp(n->name, BAD_CAST name) == 0);
}

xmlNodePtr
msvm_xml_child(xmlNodePtr parent, const char *name)
{
  if (parent == NULL)
    return NULL;
  for (xmlNodePtr c = parent->children; c != NULL; c = c->next) {
    if (is_element(c, name))
      return c;
  }
  return NULL;
}

xmlNodePtr
msvm_xml_next(xmlNodePtr node, const char *name)
{
  for (xmlNodePtr c = node->next; c != NULL; c = c->next) {
    if (is_element(c, name))
      return c;
  }
  return NULL;
}

xmlNodePtr
msvm_xml_child_ns(xmlNodePtr parent, const char *ns_href, const char *name)
{
  if (parent == NULL)
    return NULL;
  for (xmlNodePtr c = parent->children; c != NULL; c = c->next) {
    if (c->type == XML_ELEMENT_NODE && c->ns != NULL &&
        xmlStrcmp(c->ns->href, BAD_CAST ns_href) == 0 &&
        xmlStrcmp(c->name, BAD_CAST name) == 0)
      return c;
  }
  return NULL;
}

guint
msvm_xml_count_elements(xmlNodePtr parent)
{
  guint n = 0;

  for (xmlNodePtr c = parent->children; c != NULL; c = c->next) {
    if (c->type == XML_ELEMENT_NODE)
      n++;
  }
  return n;
}

xmlNodePtr
msvm_xml_nth_element(xmlNodePtr parent, guint index)
{
  for (xmlNodePtr c = parent->children; c != NULL; c = c->next) {
    if (c->type != XML_ELEMENT_NODE)
      continue;
    if (index == 0)
      return c;
    index--;
  }
  return NULL;
}

guint
msvm_xml_element_index(xmlNodePtr node)
{
  guint n = 0;

  for (xmlNodePtr c = node->prev; c != NULL; c = c->prev) {
    if (c->type == XML_ELEMENT_NODE)
      n++;
  }
  return n;
}

char *
msvm_xml_prop(xmlNodePtr node, const char *name)
{
  xmlChar *v;
  char *ret;

  if (node == NULL)
    return NULL;
  v = xmlGetNoNsProp(node, BAD_CAST name);
  if (v == NULL)
    return NULL;
  ret = g_strdup((const char *)v);
  xmlFree(v);
  return ret;
}

gboolean
msvm_xml_prop_is(xmlNodePtr node, const char *name, const char *value)
{
  g_autofree char *v = msvm_xml_prop(node, name);

  return g_strcmp0(v, value) == 0;
}

xmlNodePtr
msvm_xml_first_of(xmlNodePtr parent, const char *const *names)
{
  for (xmlNodePtr c = parent->children; c != NULL; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || c->ns != NULL)
      continue;
    if (g_strv_contains(names, (const char *)c->name))
      return c;
  }
  return NULL;
}

/* ---- edits that keep the indentation */

static gboolean
is_blank_text(xmlNodePtr n)
{
  if (n == NULL || n->type != XML_TEXT_NODE)
    return FALSE;
  for (const xmlChar *p = n->content; p && *p; p++) {
    if (!g_ascii_isspace(*p))
      return FALSE;
  }
  return TRUE;
}

/* The indentation unit of the document ("  " for libvirt's), or NULL when
 * the document has no line structure (everything on one line). */
static char *
indent_unit(xmlDocPtr doc)
{
  xmlNodePtr root = xmlDocGetRootElement(doc);
  const char *nl;

  if (root == NULL || !is_blank_text(root->children))
    return NULL;
  nl = strrchr((const char *)root->children->content, '\n');
  if (nl == NULL)
    return NULL;
  return g_strdup(nl + 1);
}

static guint
depth_of(xmlNodePtr node)
{
  guint d = 0;

  for (xmlNodePtr p = node->parent; p != NULL && p->type == XML_ELEMENT_NODE; p = p->parent)
    d++;
  return d;
}

static xmlNodePtr
new_indent(xmlDocPtr doc, const char *unit, guint depth)
{
  GString *s = g_string_new("\n");
  xmlNodePtr t;

  for (guint i = 0; i < depth; i++)
    g_string_append(s, unit);
  t = xmlNewDocText(doc, BAD_CAST s->str);
  g_string_free(s, TRUE);
  return t;
}

void
msvm_xml_insert(xmlNodePtr parent, xmlNodePtr node, xmlNodePtr before)
{
  g_autofree char *unit = indent_unit(parent->doc);
  guint depth = depth_of(parent) + 1;  /* depth of the new child */
  xmlNodePtr last = parent->last;

  if (before != NULL) {
    xmlAddPrevSibling(before, node);
    if (unit != NULL)
      xmlAddPrevSibling(before, new_indent(parent->doc, unit, depth));
    return;
  }
  if (unit == NULL) {
    xmlAddChild(parent, node);
    return;
  }
  if (last == NULL) {
    xmlAddChild(parent, new_indent(parent->doc, unit, depth));
    xmlAddChild(parent, node);
    xmlAddChild(parent, new_indent(parent->doc, unit, depth - 1));
    return;
  }
  if (is_blank_text(last)) {
    /* ... <last/>TEXT</parent>: the element goes before the closing
     * indentation, its own indentation in front of it */
    xmlAddPrevSibling(last, node);
    xmlAddPrevSibling(node, new_indent(parent->doc, unit, depth));
    return;
  }
  xmlAddChild(parent, new_indent(parent->doc, unit, depth));
  xmlAddChild(parent, node);
}

xmlNodePtr
msvm_xml_add(xmlNodePtr parent, const char *name, xmlNodePtr before)
{
  xmlNodePtr node = xmlNewDocNode(parent->doc, NULL, BAD_CAST name, NULL);

  if (node == NULL)
    g_error("out of memory");
  msvm_xml_insert(parent, node, before);
  return node;
}

xmlNodePtr
msvm_xml_unlink(xmlNodePtr node)
{
  xmlNodePtr prev = node->prev;

  if (is_blank_text(prev)) {
    xmlUnlinkNode(prev);
    xmlFreeNode(prev);
  }
  xmlUnlinkNode(node);
  return node;
}

void
msvm_xml_remove(xmlNodePtr node)
{
  xmlFreeNode(msvm_xml_unlink(node));
}
