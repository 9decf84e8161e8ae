/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hook-store-tool.c: test-only tool that builds and inspects per-VM stores
 * with the store module's API, without libvirt, for the hook tests
 * (tests/integration/test-hook-*.sh, tests/bench/bench-hook.sh).
 *
 *   hook-store-tool init ROOT UUID               generation 1 current and state;
 *                                                prints its secret UUID
 *   hook-store-tool pending ROOT UUID            a new generation becomes current
 *                                                (state stays) with an open job;
 *                                                prints "SECRET JOBID"
 *   hook-store-tool journal ROOT UUID            a change killed between its define
 *                                                and recording `current`: a new
 *                                                generation, the journal open on it,
 *                                                `current` unchanged; prints its secret
 *   hook-store-tool plaintext ROOT UUID          the store records the state as
 *                                                plaintext (`state` 0), `current`
 *                                                stays: a pending encryption of a
 *                                                plaintext vTPM
 *   hook-store-tool secret ROOT UUID N           secret UUID of generation N
 *   hook-store-tool passphrase ROOT UUID N FILE  generation N's passphrase into
 *                                                FILE (0600; tests only)
 *   hook-store-tool stash ROOT UUID FILE         the stash of removed devices is
 *                                                FILE's text
 *   hook-store-tool show ROOT UUID               "current=C state=S lkg=L
 *                                                lkg-from-start=0|1 journal=0|1",
 *                                                then one line
 *                                                per job: "job ID STATE ERRORCODE"
 *   hook-store-tool hold-lock ROOT UUID SECONDS  hold the per-VM lock, print
 *                                                "locked" once it is held
 *
 * The generations' halves are the policy bytes "policy-N".
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "msvm-error.h"
#include "msvm-kdf.h"
#include "msvm-secret.h"
#include "msvm-store.h"

static int
fail(const char *what, GError *error)
{
  fprintf(stderr, "hook-store-tool: %s: %s\n", what, error ? error->message : "failed");
  return 1;
}

static MsvmGeneration *
add_gen(MsvmStore *store)
{
  g_autofree char *policy = g_strdup_printf("policy-%u", store->next_generation);
  return msvm_store_add_generation(store, NULL, 0, FALSE, (const guint8 *)policy,
                                   strlen(policy), TRUE);
}

int
main(int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MsvmStore) store = NULL;
  guint8 uuid[16];
  const char *cmd, *root;
  int fd;

  if (argc < 4 || !msvm_uuid_parse(argv[3], uuid)) {
    fprintf(stderr, "usage: hook-store-tool COMMAND ROOT UUID [ARGS]\n");
    return 2;
  }
  cmd = argv[1];
  root = argv[2];

  if (g_str_equal(cmd, "hold-lock")) {
    fd = msvm_store_lock(root, uuid, TRUE, &error);
    if (fd < 0)
      return fail("lock", error);
    printf("locked\n");
    fflush(stdout);
    sleep(argc > 4 ? atoi(argv[4]) : 60);
    close(fd);
    return 0;
  }

  fd = msvm_store_lock(root, uuid, TRUE, &error);
  if (fd < 0)
    return fail("lock", error);
  if (!msvm_store_load(root, uuid, &store, &error))
    return fail("load", error);

  if (g_str_equal(cmd, "init")) {
    MsvmGeneration *gen;
    if (store->exists) {
      fprintf(stderr, "hook-store-tool: the store exists already\n");
      return 1;
    }
    store->kdf_version = MSVM_KDF_VERSION;
    gen = add_gen(store);
    store->current = store->state = gen->number;
    if (!msvm_store_save(store, &error))
      return fail("save", error);
    printf("%s\n", gen->secret_uuid);
  } else if (g_str_equal(cmd, "pending")) {
    MsvmGeneration *gen = add_gen(store);
    MsvmStoreJob *job;
    store->current = gen->number;
    job = msvm_store_add_job(store, "SetSecurityPolicy", gen->number);
    if (!msvm_store_save(store, &error))
      return fail("save", error);
    printf("%s %s\n", gen->secret_uuid, job->id);
  } else if (g_str_equal(cmd, "journal")) {
    MsvmGeneration *gen = add_gen(store);
    store->journal.open = TRUE;
    store->journal.target = gen->number;
    store->journal.new_generation = TRUE;
    store->journal.prev_current = store->current;
    store->journal.prev_state = store->state;
    store->journal.change_id = g_uuid_string_random();
    if (!msvm_store_save(store, &error))
      return fail("save", error);
    printf("%s %s\n", gen->secret_uuid, store->journal.change_id);
  } else if (g_str_equal(cmd, "plaintext")) {
    store->state = 0;
    if (!msvm_store_save(store, &error))
      return fail("save", error);
  } else if (g_str_equal(cmd, "secret") && argc > 4) {
    MsvmGeneration *gen = msvm_store_get_generation(store, atoi(argv[4]));
    if (gen == NULL)
      return fail("no such generation", NULL);
    printf("%s\n", gen->secret_uuid);
  } else if (g_str_equal(cmd, "passphrase") && argc > 5) {
    MsvmGeneration *gen = msvm_store_get_generation(store, atoi(argv[4]));
    char *pass = NULL;
    gsize len = 0;
    gboolean ok;
    if (gen == NULL)
      return fail("no such generation", NULL);
    if (!msvm_store_generation_passphrase(store, gen, &pass, &len, &error))
      return fail("passphrase", error);
    ok = msvm_atomic_write(argv[5], pass, len, 0600, MSVM_ATOMIC_WRITE_UNIQUE_TEMP, &error);
    msvm_passphrase_free(pass, len);
    if (!ok)
      return fail("write", error);
  } else if (g_str_equal(cmd, "stash") && argc > 4) {
    /* the stash from a file, read into a secret buffer (the freed-secrets
     * test: the tool itself leaves no copy behind) */
    g_autoptr(GBytes) text = NULL;
    gboolean too_long = FALSE;
    int stash_fd = open(argv[4], O_RDONLY | O_CLOEXEC);
    if (stash_fd < 0)
      return fail("open the stash", NULL);
    if (!msvm_secret_read_fd(stash_fd, 1024 * 1024, &text, &too_long) || too_long) {
      close(stash_fd);
      return fail("read the stash", NULL);
    }
    close(stash_fd);
    msvm_secret_text_free(store->stash);
    store->stash = g_strndup(g_bytes_get_data(text, NULL), g_bytes_get_size(text));
    if (!msvm_store_save(store, &error))
      return fail("save", error);
  } else if (g_str_equal(cmd, "show")) {
    printf("current=%u state=%u lkg=%u lkg-from-start=%d journal=%d\n", store->current,
           store->state, store->last_known_good, store->lkg_from_start ? 1 : 0,
           store->journal.open ? 1 : 0);
    for (guint i = 0; i < store->jobs->len; i++) {
      const MsvmStoreJob *job = g_ptr_array_index(store->jobs, i);
      printf("job %s %u %u\n", job->id, job->state, job->error_code);
    }
  } else {
    fprintf(stderr, "hook-store-tool: unknown command %s\n", cmd);
    close(fd);
    return 2;
  }
  close(fd);
  return 0;
}
