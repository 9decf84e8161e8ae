/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msvm-types-private.h: what the provider reads of an MsvmCallOptions. */
#pragma once

#include "msvm-security.h"

struct _MsvmCallOptions {
  char *domain;           /* NULL: the InstanceID names the VM */
  MsvmCallFlags flags;
  GBytes *old_passphrase; /* a secret buffer (msvm-secret.h), or NULL */
};
