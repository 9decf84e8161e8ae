/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msvm-service-private.h: what the provider's files share about a service
 * (msvm-service.c: the five methods; msvm-move.c: guardians, export,
 * import and forget).  Not installed.
 */
#pragma once

#include <glib-object.h>
#include <libvirt/libvirt.h>

#include "msvm-security.h"

G_BEGIN_DECLS

struct _MsvmService {
  GObject parent_instance;
  virConnectPtr conn;     /* NULL once closed (or made by g_object_new) */
  gboolean system;
  gboolean read_only;     /* a read-only libvirt connection: changes answer 32769 */
  char *store_root;
};

/* Every method first: a service that is not connected (closed, or not
 * made by msvm_service_open) answers 32777. */
gboolean msvm_service_check_open(MsvmService *svc, GError **error);

/* A change needs a read-write connection: FALSE with 32769 otherwise. */
gboolean msvm_service_check_writable(MsvmService *svc, GError **error);

G_END_DECLS
