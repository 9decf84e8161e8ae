/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * guardian-tool: a second guardian for the tests, on a store root of its
 * own, through the same library code as the CLI (msvm-guardian.c,
 * msvm-bundle.c), so that one daemon's test can export for "another host"
 * and read what arrived there (test-only, not installed):
 *
 *   guardian-tool ROOT show                      the two certificates (PEM)
 *   guardian-tool ROOT trust NAME FILE           trust a peer's certificates
 *   guardian-tool ROOT open FILE                 open a bundle, print what it holds
 *   guardian-tool ROOT reseal FILE NAME OUT      open a bundle, seal it again for NAME
 *   guardian-tool ROOT reseed FILE NAME OUT      the same with a new seed and new secret
 *                                                UUIDs (another lineage of the VM)
 *
 * A refusal prints "refused CODE: MESSAGE" and exits 1.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "msvm-bundle.h"
#include "msvm-error.h"
#include "msvm-guardian.h"
#include "msvm-uuid.h"

static int
refused(GError *error)
{
  printf("refused %d: %s\n", error->code, error->message);
  return 1;
}

int
main(int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmGuardian) g = NULL;

  if (argc < 3) {
    fprintf(stderr, "usage: guardian-tool ROOT show|trust|open|reseal ...\n");
    return 2;
  }
  g = msvm_guardian_open(argv[1], &error);
  if (g == NULL)
    return refused(error);
  if (strcmp(argv[2], "show") == 0) {
    g_autofree char *pem = msvm_guardian_certificates_pem(g);
    fputs(pem, stdout);
    return 0;
  }
  if (strcmp(argv[2], "trust") == 0 && argc == 5) {
    g_autofree char *pem = NULL;
    gsize len = 0;
    if (!g_file_get_contents(argv[4], &pem, &len, &error) ||
        !msvm_guardian_trust(g, argv[3], (const guint8 *)pem, len, FALSE, NULL, NULL, &error))
      return refused(error);
    return 0;
  }
  if ((strcmp(argv[2], "open") == 0 && argc == 4) ||
      ((strcmp(argv[2], "reseal") == 0 || strcmp(argv[2], "reseed") == 0) && argc == 6)) {
    g_autofree char *data = NULL;
    g_autoptr(MsvmBundle) b = NULL;
    gsize len = 0;
    if (!g_file_get_contents(argv[3], &data, &len, &error) ||
        !msvm_bundle_open(g, (const guint8 *)data, len, &b, &error))
      return refused(error);
    if (strcmp(argv[2], "reseed") == 0) {
      for (gsize i = 0; i < sizeof(b->store->seed); i++)
        b->store->seed[i] = (guint8)g_random_int();
      for (guint i = 0; i < b->store->generations->len; i++) {
        MsvmGeneration *gen = g_ptr_array_index(b->store->generations, i);
        g_free(gen->secret_uuid);
        gen->secret_uuid = g_uuid_string_random();
      }
    }
    if (strcmp(argv[2], "open") != 0) {
      g_autoptr(GBytes) sealed = NULL;
      gsize n = 0;
      const char *p;
      if (!msvm_bundle_seal(b, g, argv[4], &sealed, &error))
        return refused(error);
      p = g_bytes_get_data(sealed, &n);
      if (!g_file_set_contents(argv[5], p, (gssize)n, &error))
        return refused(error);
      return 0;
    }
    {
      g_autofree char *u = msvm_uuid_to_string(b->store->uuid);
      printf("vm-uuid %s\nsigner %s\nseed ", u, b->signer);
      for (gsize i = 0; i < sizeof(b->store->seed); i++)
        printf("%02x", b->store->seed[i]);
      printf("\ncurrent %u\nstate %u\n", b->store->current, b->store->state);
      for (guint i = 0; i < b->store->generations->len; i++) {
        const MsvmGeneration *gen = g_ptr_array_index(b->store->generations, i);
        printf("generation %u %s\n", gen->number, gen->secret_uuid);
      }
      printf("definition %s\nstate-files %u\nsettings %s\n", b->definition ? "yes" : "no",
             b->state_files ? b->state_files->len : 0, b->settings ? "yes" : "no");
    }
    return 0;
  }
  fprintf(stderr, "guardian-tool: unknown command\n");
  return 2;
}
