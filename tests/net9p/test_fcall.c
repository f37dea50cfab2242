/*
 * test_fcall.c: the codec.  Every message of both dialects round-trips;
 * golden bytes pin the wire layout; every truncation and extension of
 * every message is refused; the error table and dial strings map both ways.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <uksim/9p.h>

/* A message with every field set, so any layout has something to carry. */
static void sample(p9_fcall *f, uint8_t type) {
  static const uint8_t data[] = "0123456789abcdef";
  memset(f, 0, sizeof(*f));
  f->type = type;
  f->tag = 0x1234;
  f->fid = 7;
  f->msize = 8192;
  f->version = p9_str_c("9P2000");
  f->oldtag = 3;
  f->ename = p9_str_c("file does not exist");
  f->ecode = ENOENT;
  f->afid = 9;
  f->uname = p9_str_c("glenda");
  f->aname = p9_str_c("/usr/glenda");
  f->n_uname = 1000;
  f->qid = (p9_qid){P9_QTDIR, 5, 0x1122334455667788ull};
  f->iounit = 8168;
  f->newfid = 8;
  f->nwname = 3;
  f->wname[0] = p9_str_c("a");
  f->wname[1] = p9_str_c("bb");
  f->wname[2] = p9_str_c("..");
  f->nwqid = 2;
  f->wqid[0] = (p9_qid){P9_QTDIR, 1, 2};
  f->wqid[1] = (p9_qid){P9_QTFILE, 3, 4};
  f->mode = P9_ORDWR | P9_OTRUNC;
  f->perm = P9_DMDIR | 0755;
  f->name = p9_str_c("name");
  f->offset = 1ull << 40;
  f->count = sizeof(data) - 1;
  f->data = data;
  f->stat.type = 1;
  f->stat.dev = 2;
  f->stat.qid = f->qid;
  f->stat.mode = 0644;
  f->stat.atime = 10;
  f->stat.mtime = 11;
  f->stat.length = 12;
  f->stat.name = p9_str_c("x");
  f->stat.uid = f->stat.gid = f->stat.muid = p9_str_c("glenda");
  f->flags = 01002;
  f->lmode = 0100644;
  f->gid = 100;
  f->dfid = 11;
  f->symtgt = p9_str_c("../target");
  f->major = 1;
  f->minor = 2;
  f->newname = p9_str_c("new");
  f->request_mask = P9_GETATTR_BASIC;
  f->attr.valid = P9_SETATTR_MODE | P9_SETATTR_SIZE;
  f->attr.qid = f->qid;
  f->attr.mode = 0100644;
  f->attr.size = 99;
  f->attr.mtime_sec = 1234;
  f->attr.data_version = 77;
  f->statfs = (p9_statfs){1, 4096, 10, 9, 8, 7, 6, 5, 255};
  f->xsize = 42;
  f->datasync = 1;
  f->ltype = 1;
  f->lstatus = 0;
  f->lstart = 100;
  f->llength = 200;
  f->proc_id = 4242;
  f->client_id = p9_str_c("host");
}

static int roundtrip_all(p9_dialect d) {
  int n = 0;
  for (unsigned t = 0; t < 256; t++) {
    p9_fcall f, g;
    uint8_t a[512], b[512];
    long la, lb;
    sample(&f, (uint8_t)t);
    if ((la = p9_fcall_size(&f, d)) < 0)
      continue;
    cr_assert_eq(p9_encode(&f, d, a, sizeof(a)), la, "%s", p9_msgname(t));
    cr_assert_eq(p9_decode(a, (size_t)la, d, &g), 0, "%s", p9_msgname(t));
    cr_assert_eq(g.type, t);
    cr_assert_eq(g.tag, 0x1234);
    lb = p9_encode(&g, d, b, sizeof(b));
    cr_assert_eq(lb, la, "%s", p9_msgname(t));
    cr_assert_eq(memcmp(a, b, (size_t)la), 0, "%s", p9_msgname(t));
    n++;
  }
  return n;
}

Test(fcall, every_9p2000_message_round_trips, .timeout = 10) {
  cr_assert_eq(roundtrip_all(P9_2000), 27);
}

Test(fcall, every_9p2000L_message_round_trips, .timeout = 10) {
  cr_assert_eq(roundtrip_all(P9_2000L), 57);
}

Test(fcall, decoded_fields_keep_their_values, .timeout = 10) {
  p9_fcall f, g;
  uint8_t buf[512];
  long n;
  sample(&f, P9_TWALK);
  n = p9_encode(&f, P9_2000, buf, sizeof(buf));
  cr_assert_eq(p9_decode(buf, (size_t)n, P9_2000, &g), 0);
  cr_assert_eq(g.fid, 7);
  cr_assert_eq(g.newfid, 8);
  cr_assert_eq(g.nwname, 3);
  cr_assert(p9_str_eq(g.wname[1], "bb"));
  sample(&f, P9_TSETATTR);
  n = p9_encode(&f, P9_2000L, buf, sizeof(buf));
  cr_assert_eq(p9_decode(buf, (size_t)n, P9_2000L, &g), 0);
  cr_assert_eq(g.attr.valid, P9_SETATTR_MODE | P9_SETATTR_SIZE);
  cr_assert_eq(g.attr.size, 99);
  sample(&f, P9_TATTACH);
  n = p9_encode(&f, P9_2000L, buf, sizeof(buf));
  cr_assert_eq(p9_decode(buf, (size_t)n, P9_2000L, &g), 0);
  cr_assert_eq(g.n_uname, 1000);
  cr_assert(p9_str_eq(g.aname, "/usr/glenda"));
}

Test(fcall, golden_bytes_match_the_specification, .timeout = 10) {
  static const uint8_t tversion[] = {19, 0, 0, 0,   100, 0xff, 0xff, 0,   32, 0,
                                     0,  6, 0, '9', 'P', '2',  '0',  '0', '0'};
  p9_fcall f = {.type = P9_TVERSION, .tag = P9_NOTAG, .msize = 8192};
  uint8_t buf[256];
  f.version = p9_str_c("9P2000");
  cr_assert_eq(p9_encode(&f, P9_2000, buf, sizeof(buf)), sizeof(tversion));
  cr_assert_eq(memcmp(buf, tversion, sizeof(tversion)), 0);
  /* Rgetattr is 153 bytes of body in the 9P2000.L specification. */
  sample(&f, P9_RGETATTR);
  cr_assert_eq(p9_fcall_size(&f, P9_2000L), 7 + 153);
  /* Rread: size count data, data at offset 11. */
  sample(&f, P9_RREAD);
  cr_assert_eq(p9_encode(&f, P9_2000, buf, sizeof(buf)), 11 + 16);
  cr_assert_eq(memcmp(buf + P9_RREAD_DATA_OFF, "0123456789abcdef", 16), 0);
}

Test(fcall, every_truncation_and_extension_is_refused, .timeout = 30) {
  for (int d = P9_2000; d <= P9_2000L; d++) {
    for (unsigned t = 0; t < 256; t++) {
      p9_fcall f, g;
      uint8_t buf[512];
      long n;
      sample(&f, (uint8_t)t);
      if ((n = p9_fcall_size(&f, d)) < 0)
        continue;
      p9_encode(&f, d, buf, sizeof(buf));
      for (long k = 0; k < n; k++) {
        uint8_t *m = malloc((size_t)k ? (size_t)k : 1);
        memcpy(m, buf, (size_t)k);
        if (k >= 4) /* a size field that tells the truth about the cut */
          m[0] = (uint8_t)k, m[1] = m[2] = m[3] = 0;
        if (!(t == P9_TFSYNC && k == n - 4))
          cr_assert_neq(p9_decode(m, (size_t)k, d, &g), 0, "%s cut at %ld",
                        p9_msgname(t), k);
        free(m);
      }
      buf[n] = 0;
      buf[0] = (uint8_t)(n + 1);
      cr_assert_neq(p9_decode(buf, (size_t)n + 1, d, &g), 0, "%s + 1",
                    p9_msgname(t));
    }
  }
}

Test(fcall, wrong_size_unknown_type_and_long_walks_are_refused, .timeout = 10) {
  p9_fcall f, g;
  uint8_t buf[512];
  long n;
  sample(&f, P9_TCLUNK);
  n = p9_encode(&f, P9_2000, buf, sizeof(buf));
  buf[0] = (uint8_t)(n + 5); /* says more than there is */
  cr_assert_eq(p9_decode(buf, (size_t)n, P9_2000, &g), -EBADMSG);
  buf[0] = (uint8_t)n;
  buf[4] = 200; /* no such type */
  cr_assert_eq(p9_decode(buf, (size_t)n, P9_2000, &g), -ENOSYS);
  cr_assert_eq(g.tag, 0x1234);
  buf[4] = P9_TLOPEN; /* a .L message in a 9P2000 session */
  cr_assert_eq(p9_decode(buf, (size_t)n, P9_2000, &g), -ENOSYS);
  sample(&f, P9_TWALK);
  f.nwname = 17;
  cr_assert_lt(p9_fcall_size(&f, P9_2000), 0);
  f.nwname = 16;
  for (int i = 0; i < 16; i++)
    f.wname[i] = p9_str_c("x");
  n = p9_encode(&f, P9_2000, buf, sizeof(buf));
  cr_assert_gt(n, 0);
  buf[15] = 17; /* nwname on the wire */
  cr_assert_eq(p9_decode(buf, (size_t)n, P9_2000, &g), -EBADMSG);
  /* A string count running past the end of the message. */
  sample(&f, P9_TCREATE);
  n = p9_encode(&f, P9_2000, buf, sizeof(buf));
  buf[11] = 0xff;
  cr_assert_eq(p9_decode(buf, (size_t)n, P9_2000, &g), -EBADMSG);
  /* Rread whose count exceeds its message. */
  sample(&f, P9_RREAD);
  n = p9_encode(&f, P9_2000, buf, sizeof(buf));
  buf[7] = 200;
  cr_assert_eq(p9_decode(buf, (size_t)n, P9_2000, &g), -EBADMSG);
  cr_assert_eq(p9_decode(buf, 3, P9_2000, &g), -EBADMSG);
}

Test(fcall, encode_refuses_a_buffer_too_small, .timeout = 10) {
  p9_fcall f;
  uint8_t buf[16];
  sample(&f, P9_RSTAT);
  cr_assert_eq(p9_encode(&f, P9_2000, buf, sizeof(buf)), -EMSGSIZE);
  cr_assert_eq(p9_fcall_size(&f, P9_2000L), -EPROTO); /* no Rstat in .L */
}

Test(fcall, stat_entries_are_self_delimiting, .timeout = 10) {
  p9_fcall f;
  p9_stat st;
  uint8_t buf[256];
  sample(&f, P9_RSTAT);
  long n = p9_stat_encode(&f.stat, buf, sizeof(buf));
  cr_assert_eq(n, (long)p9_stat_size(&f.stat));
  cr_assert_eq(p9_stat_decode(buf, (size_t)n, &st), n);
  cr_assert(p9_str_eq(st.name, "x"));
  cr_assert_eq(st.length, 12);
  buf[0]++; /* size[2] disagrees with the strings */
  cr_assert_eq(p9_stat_decode(buf, (size_t)n, &st), -EBADMSG);
  p9_dirent de = {f.qid, 5, 4, p9_str_c("dir")}, de2;
  n = p9_dirent_encode(&de, buf, sizeof(buf));
  cr_assert_eq(n, 13 + 8 + 1 + 2 + 3);
  cr_assert_eq(p9_dirent_decode(buf, (size_t)n, &de2), n);
  cr_assert_eq(de2.offset, 5);
  cr_assert(p9_str_eq(de2.name, "dir"));
  cr_assert_eq(p9_dirent_decode(buf, (size_t)n - 1, &de2), -EBADMSG);
}

Test(fcall, error_table_maps_both_ways, .timeout = 10) {
  cr_assert_str_eq(p9_strerror(-ENOENT), "file does not exist");
  cr_assert_eq(p9_errno(p9_str_c("file does not exist")), ENOENT);
  cr_assert_eq(p9_errno(p9_str_c("no authentication required")), ENOENT);
  cr_assert_eq(p9_errno(p9_str_c("permission denied")), EPERM);
  cr_assert_eq(p9_errno(p9_str_c("some text nobody knows")), EIO);
  for (int e = 1; e < 134; e++) /* every errno has text that maps back */
    if (strcmp(p9_strerror(e), "i/o error") != 0)
      cr_assert_eq(p9_errno(p9_str_c(p9_strerror(e))) == e || e == EACCES, 1,
                   "errno %d", e);
}

/* What other servers send: glibc's strerror texts (9P2000 servers on
 * Linux), other cases, Plan 9's spellings, and texts with a name or an
 * operation around them (the longest known text inside wins). */
Test(fcall, error_texts_of_other_servers_map_to_their_errno, .timeout = 10) {
  static const struct {
    const char *text;
    int err;
  } t[] = {{"No such file or directory", ENOENT},
           {"Permission denied", EACCES},
           {"Operation not permitted", EPERM},
           {"File exists", EEXIST},
           {"Not a directory", ENOTDIR},
           {"Is a directory", EISDIR},
           {"Directory not empty", ENOTEMPTY},
           {"Invalid argument", EINVAL},
           {"No space left on device", ENOSPC},
           {"Input/output error", EIO},
           {"Read-only file system", EROFS},
           {"Operation not supported", EOPNOTSUPP},
           {"Too many open files", EMFILE},
           {"FILE DOES NOT EXIST", ENOENT},
           {"file exists", EEXIST},
           {"file is a directory", EISDIR},
           {"file not found", ENOENT},
           {"exclusive use file already open", EBUSY},
           {"'/usr/glenda/x' file does not exist", ENOENT},
           {"walk: No such file or directory", ENOENT},
           {"create /tmp/x: file already exists", EEXIST},
           {"No such device or address", ENXIO},
           {"", EIO}};
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    cr_assert_eq(p9_errno(p9_str_c(t[i].text)), t[i].err, "'%s' -> %d",
                 t[i].text, p9_errno(p9_str_c(t[i].text)));
  /* Counted strings need not end in NUL. */
  cr_assert_eq(p9_errno((p9_str){"File existsXYZ", 11}), EEXIST);
}

Test(fcall, formatter_names_messages, .timeout = 10) {
  p9_fcall f;
  char line[256];
  sample(&f, P9_TWALK);
  p9_fcall_fmt(line, sizeof(line), &f);
  cr_assert_str_eq(line,
                   "Twalk tag 4660 fid 7 newfid 8 nwname 3 0:a 1:bb 2:..");
  f.type = P9_RCLUNK; /* an answer names no fid */
  p9_fcall_fmt(line, sizeof(line), &f);
  cr_assert_str_eq(line, "Rclunk tag 4660");
  f.type = P9_TCLUNK;
  p9_fcall_fmt(line, sizeof(line), &f);
  cr_assert_str_eq(line, "Tclunk tag 4660 fid 7");
  f.type = 250;
  p9_fcall_fmt(line, sizeof(line), &f);
  cr_assert_str_eq(line, "type 250 tag 4660");
  cr_assert_eq(p9_fcall_fmt(line, 4, &f), 17); /* truncates like snprintf */
  cr_assert_str_eq(line, "typ");
}

Test(fcall, dial_strings_parse, .timeout = 10) {
  p9_addr a;
  cr_assert_eq(p9_addr_parse("tcp!127.0.0.1!5640", &a), 0);
  cr_assert_str_eq(a.host, "127.0.0.1");
  cr_assert_str_eq(a.port, "5640");
  cr_assert(p9_addr_is_loopback(&a));
  cr_assert_eq(p9_addr_parse("unix!/tmp/x/sock", &a), 0);
  cr_assert(a.is_unix);
  cr_assert_str_eq(a.path, "/tmp/x/sock");
  cr_assert_eq(p9_addr_parse("tcp!*!564", &a), 0);
  cr_assert_not(p9_addr_is_loopback(&a));
  cr_assert_eq(p9_addr_parse("tcp!10.0.0.1!564", &a), 0);
  cr_assert_not(p9_addr_is_loopback(&a));
  cr_assert_eq(p9_addr_parse("tcp!::1!564", &a), 0);
  cr_assert(p9_addr_is_loopback(&a));
  cr_assert_eq(p9_addr_parse("tcp!host", &a), -EINVAL);
  cr_assert_eq(p9_addr_parse("tcp!host!port", &a), -EINVAL);
  cr_assert_eq(p9_addr_parse("udp!h!1", &a), -EINVAL);
  cr_assert_eq(p9_addr_parse("unix!", &a), -EINVAL);
}
