#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz targets: corpus/decode and
corpus/srv, well-formed 9P2000 and 9P2000.L sessions built from the message
layouts in intro(5) and the 9P2000.L specification; corpus/client and
corpus/aclient, client scripts with the answers a server would give them;
corpus/kcall, call sequences of three processes in the kernel ABI
(include/uksim/kabi.h).  The seeds sit beside what fuzzing found (run.sh
--update-corpus): running this again only rewrites the seeds' own files."""
import os
import struct

def s(x):
    b = x.encode()
    return struct.pack('<H', len(b)) + b

def qid(t=0, v=0, p=1):
    return struct.pack('<BIQ', t, v, p)

def msg(t, tag, body):
    return struct.pack('<IBH', 7 + len(body), t, tag) + body

def stat(name):
    rest = (struct.pack('<HI', 0, 0) + qid() + struct.pack('<IIIQ', 0o644, 0, 0, 5)
            + s(name) + s('u') + s('g') + s('m'))
    return struct.pack('<H', len(rest)) + rest

u32 = lambda v: struct.pack('<I', v)
u64 = lambda v: struct.pack('<Q', v)

classic = [
    msg(100, 0xffff, u32(8192) + s('9P2000')),
    msg(102, 1, u32(9) + s('glenda') + s('')),
    msg(104, 1, u32(0) + u32(0xffffffff) + s('glenda') + s('')),
    msg(110, 2, u32(0) + u32(1) + struct.pack('<H', 0)),
    msg(114, 3, u32(1) + s('f') + u32(0o644) + bytes([2])),
    msg(118, 4, u32(1) + u64(0) + u32(5) + b'hello'),
    msg(116, 5, u32(1) + u64(0) + u32(100)),
    msg(124, 6, u32(1)),
    msg(126, 7, u32(1) + struct.pack('<H', len(stat('g'))) + stat('g')),
    msg(108, 8, struct.pack('<H', 5)),
    msg(110, 9, u32(0) + u32(2) + struct.pack('<H', 2) + s('f') + s('x')),
    msg(112, 10, u32(0) + bytes([0])),
    msg(116, 11, u32(0) + u64(0) + u32(4096)),
    msg(114, 12, u32(0) + s('d') + u32(0x80000000 | 0o755) + bytes([0])),
    msg(122, 13, u32(1)),
    msg(120, 14, u32(0)),
]
dotl = [
    msg(100, 0xffff, u32(65536) + s('9P2000.L')),
    msg(104, 1, u32(0) + u32(0xffffffff) + s('') + s('/') + u32(0)),
    msg(72, 2, u32(0) + s('d') + u32(0o755) + u32(0)),
    msg(110, 3, u32(0) + u32(1) + struct.pack('<H', 0)),
    msg(14, 4, u32(1) + s('f') + u32(0o1102) + u32(0o644) + u32(0)),
    msg(118, 5, u32(1) + u64(0) + u32(3) + b'abc'),
    msg(24, 6, u32(1) + u64(0x7ff)),
    msg(26, 7, u32(1) + u32(8) + u32(0) * 3 + u64(1) + u64(0) * 4),
    msg(110, 8, u32(0) + u32(2) + struct.pack('<H', 0)),
    msg(12, 9, u32(2) + u32(0)),
    msg(40, 10, u32(2) + u64(0) + u32(4096)),
    msg(8, 11, u32(0)),
    msg(50, 12, u32(1) + u32(0)),
    msg(74, 13, u32(0) + s('f') + u32(0) + s('g')),
    msg(76, 14, u32(0) + s('d') + u32(0)),
    msg(30, 15, u32(0) + u32(5) + s('user.x')),
    msg(120, 16, u32(1)),
]
here = os.path.dirname(os.path.abspath(__file__))
for sub in ('decode', 'srv'):
    os.makedirs(os.path.join(here, 'corpus', sub), exist_ok=True)
for i, m in enumerate(classic + dotl):
    with open(os.path.join(here, 'corpus', 'decode', 'msg%02d' % i), 'wb') as f:
        f.write(m)
    with open(os.path.join(here, 'corpus', 'decode', 'stat'), 'wb') as f:
        f.write(stat('name'))
for name, flags, seq in (('classic', 0, classic), ('dotl', 0, dotl),
                         ('keyed', 1, classic[:4])):
    with open(os.path.join(here, 'corpus', 'srv', name), 'wb') as f:
        f.write(bytes([flags]) + b''.join(seq))


# --- the ICA transport: per request len[2] flags[1] ctl (fuzz_icat.c);
# flags bit 0: a data ICA, bits 1-3 its size in 64-byte steps.

def ica_req(m, flags=0):
    return struct.pack('<HB', len(m), flags) + m

os.makedirs(os.path.join(here, 'corpus', 'icat'), exist_ok=True)
with open(os.path.join(here, 'corpus', 'icat', 'classic'), 'wb') as f:
    f.write(b''.join(ica_req(m) for m in classic))
with open(os.path.join(here, 'corpus', 'icat', 'bulk'), 'wb') as f:
    # the session up to a created file, then a bulk Twrite and Tread of
    # 100 bytes in a 128-byte data ICA
    bulk_w = msg(118, 20, u32(1) + u64(0) + u32(100))
    bulk_r = msg(116, 21, u32(1) + u64(0) + u32(100))
    f.write(b''.join(ica_req(m) for m in classic[:6]) +
            ica_req(bulk_w, 1 | 2 << 1) + ica_req(bulk_r, 1 | 2 << 1))

# --- the clients: flags[1] script[8] answers (fuzz_client.c, fuzz_aclient.c)

def qids(n):
    return b''.join(qid(p=i + 2) for i in range(n))

def rgetattr():
    return (u64(0x7ff) + qid() + u32(0o100644) + u32(0) * 2 + u64(1) + u64(0)
            + u64(5) + u64(4096) + u64(1) + u64(0) * 10)

class Answers:
    """The answers to a client's requests, tagged 1, 2, ... as it sends."""
    def __init__(self, dotl):
        self.dotl, self.tag, self.out = dotl, 0, []
        self.version(8192)

    def version(self, msize):
        self.out.append(msg(101, 0xffff, u32(msize) +
                            s('9P2000.L' if self.dotl else '9P2000')))

    def r(self, t, body=b''):
        self.tag += 1
        self.out.append(msg(t, self.tag, body))

    def error(self):
        if self.dotl:
            self.r(7, u32(2))
        else:
            self.r(107, s('file does not exist'))

    def bytes(self):
        return b''.join(self.out)

def client_seed(flags, script, answers):
    return bytes([flags]) + bytes(script).ljust(8, b'\0') + answers

def blocking(dotl, key=False):
    """fuzz_client: attach, then every operation once, all answered."""
    a = Answers(dotl)
    if key:
        a.r(103, qid(0x08))                  # Tauth
        a.r(117, u32(32) + b'c' * 32)        # Tread of the challenge
        a.r(119, u32(32))                    # Twrite of the MAC
    a.r(105, qid(0x80))                      # Tattach
    if key:
        a.r(121)                             # Tclunk of the afid
    script = [0x01, 0x04, 0x07, 0x17, 0x08, 0x0a, 0x0b, 0x0c]
    a.r(111, struct.pack('<H', 2) + qids(2))           # walk a/b
    a.r(13 if dotl else 113, qid() + u32(0))           # open
    a.r(117, u32(16) + b'x' * 16)                      # read 16
    a.r(117, u32(5) + b'hello')                        # read 4096: short,
    a.r(117, u32(0))                                   # then end of file
    a.r(119, u32(16))                                  # write 16
    if dotl:
        a.r(25, rgetattr())
        a.r(27)
    else:
        st = stat('f')
        a.r(125, struct.pack('<H', len(st)) + st)
        a.r(127)
    a.r(121)                                           # clunk the walked fid
    a.r(121)                                           # clunk the root
    return client_seed((1 if dotl else 0) | (2 if key else 0), script,
                       a.bytes())

def blocking_dirs(dotl):
    """fuzz_client: listing, creating, a long walk, remove."""
    a = Answers(dotl)
    a.r(105, qid(0x80))
    script = [0x02, 0x04, 0x09, 0x0c, 0x03, 0x05, 0x06, 0x0d]
    a.r(111, struct.pack('<H', 0))                     # walk ""
    a.r(13 if dotl else 113, qid(0x80) + u32(0))       # open the directory
    if dotl:
        ents = b''.join(qid(p=i) + u64(i + 1) + bytes([0]) + s(n)
                        for i, n in enumerate(['.', '..', 'a', 'b']))
        a.r(41, u32(len(ents)) + ents)
        a.r(41, u32(0))
    else:
        ents = stat('a') + stat('b')
        a.r(117, u32(len(ents)) + ents)
        a.r(117, u32(0))
    a.r(121)                                           # clunk the clone
    a.r(111, struct.pack('<H', 16) + qids(16))         # 18 names: 16,
    a.r(111, struct.pack('<H', 2) + qids(2))           # then 2
    a.r(15 if dotl else 115, qid() + u32(0))           # create
    if dotl:
        a.r(73, qid(0x80))                             # mkdir
    else:
        a.r(111, struct.pack('<H', 0))                 # walk "", create
        a.r(115, qid(0x80) + u32(0))                   # DMDIR, clunk
        a.r(121)
    a.r(123)                                           # remove
    a.r(121)                                           # clunk the root
    return client_seed(1 if dotl else 0, script, a.bytes())

def blocking_errors(dotl):
    """fuzz_client: a server that refuses."""
    a = Answers(dotl)
    a.r(105, qid(0x80))
    script = [0x01, 0x04, 0x07]
    a.error()
    a.error()
    a.error()
    a.error()                                          # clunk the root
    return client_seed(1 if dotl else 0, script, a.bytes())

def async_seed(dotl, chained, reverse=False):
    """fuzz_aclient: every request once, in pieces, answered in order or
    last first (the client matches answers by tag)."""
    a = Answers(dotl)
    script = [0x01, 0x02, 0x03, 0x44, 0x05, 0x06, 0x07, 0x09]
    if chained:
        script = [op | 0x80 for op in script]
    body = [(105, qid(0x80)), (111, struct.pack('<H', 2) + qids(2)),
            (13 if dotl else 113, qid() + u32(0)),
            (117, u32(5) + b'hello'), (119, u32(128))]
    if dotl:
        body += [(41, u32(0)), (25, rgetattr())]
    else:
        st = stat('f')
        body += [(125, struct.pack('<H', len(st)) + st)] * 2
    body += [(121, b'')]
    tags = list(range(1, len(body) + 1))
    if reverse:
        tags.reverse()
        body.reverse()
    for t, (typ, b) in zip(tags, body):
        a.out.append(msg(typ, t, b))
    pieces = 1 if chained else (2 if reverse else 0)
    return client_seed((1 if dotl else 0) | pieces << 2, script, a.bytes())

def async_flush(dotl):
    """fuzz_aclient: a read, its flush, the flush answered first."""
    a = Answers(dotl)
    a.out.append(msg(109, 2, b''))
    a.out.append(msg(117, 1, u32(0)))
    a.out.append(msg(7, 3, u32(13)) if dotl else msg(107, 3, s('no')))
    return client_seed((1 if dotl else 0) | 3 << 2, [0x04, 0x08, 0x09],
                       a.bytes())

# --- the kernel: ctl[1] len[2] packet records of three processes
# (fuzz_kcall.c; the ABI is include/uksim/kabi.h)

(ICA_CREATE, ICA_RELEASE, LOOKUP, SEND, AWAIT, CALL, REGISTER, RECEIVE, REPLY,
 REPLY_RECEIVE, PANIC, STATE_REGISTER, STATE_GET, ICA_ATTACH, KEEP,
 SLEEP) = range(1, 17)
KEEP_CTL = 1

def call(op, payload=b'', seq=1, flags=0, magic=0x554b, plen=None):
    plen = len(payload) if plen is None else plen
    return struct.pack('<HHIIiII', magic, op, plen, seq, 0, 0,
                       flags) + payload

def rec(proc, pkt, fd=False):
    return bytes([proc | (4 if fd else 0)]) + struct.pack('<H', len(pkt)) + pkt

def exit_rec(proc):
    return bytes([3 | proc << 2])

def name(x, n=32):
    return x.encode().ljust(n, b'\0')

def ica(index, gen=1):
    return gen << 16 | index

def req(index, gen=1):
    return gen << 16 | (index + 1)

def register(svc, version=1):
    return call(REGISTER, name(svc) + u32(version) + u32(0) +
                name('put,get', 200))

def ica_create(size, kind=1, seq=1):
    return call(ICA_CREATE, u64(size) + u32(kind) + u32(0), seq)

def send_args(svc, op, ctl, data, tag):
    return u32(svc) + u32(op) + u32(ctl) + u32(data) + u64(tag)

def reply_args(r, status, ctl, data):
    return struct.pack('<IiII', r, status, ctl, data)

def kcall_roundtrip():
    """p0 serves kvs; p1 calls it with a control and a data ICA, keeping
    its mapping; p0 replies and receives again; p1 releases."""
    return b''.join([
        rec(0, register('kvs')),
        rec(0, call(RECEIVE, seq=2)),
        rec(1, call(LOOKUP, name('kvs'))),
        rec(1, ica_create(4096, 1, 2)),
        rec(1, ica_create(65536, 2, 3)),
        rec(1, call(CALL, send_args(1, 1, ica(0), ica(1), 7), 4, KEEP_CTL)),
        rec(0, call(REPLY_RECEIVE, reply_args(req(0), 0, ica(0), ica(1)), 3)),
        rec(1, call(ICA_RELEASE, u32(ica(0)) + u32(0), 5)),
        rec(1, call(ICA_RELEASE, u32(ica(1)) + u32(0), 6)),
    ])

def kcall_async():
    """p1 sends twice and awaits each; p0 keeps one request, replies to
    both; p2 sleeps and sends to a service that is gone."""
    return b''.join([
        rec(0, register('hello')),
        rec(1, ica_create(4096, 1, 1)),
        rec(1, ica_create(4096, 1, 2)),
        rec(1, call(SEND, send_args(1, 0, ica(0), 0, 1), 3)),
        rec(1, call(SEND, send_args(1, 1, ica(1), 0, 2), 4)),
        rec(0, call(RECEIVE, seq=2)),
        rec(0, call(KEEP, u32(req(0)) + u32(0), 3)),
        rec(0, call(REPLY_RECEIVE, reply_args(req(0), -5, ica(0), 0), 4)),
        rec(0, call(REPLY, reply_args(req(1), 0, ica(1), 0), 5)),
        rec(1, call(AWAIT, u32(req(0)) + u32(0), 5)),
        rec(1, call(AWAIT, u32(0) + u32(0), 6)),
        rec(2, call(SLEEP, u64(1000), 1)),
        exit_rec(0),
        rec(1, call(SEND, send_args(1, 0, ica(0), 0, 3), 7)),
    ])

def kcall_state():
    """p0 registers state, reads it back, attaches, panics; p1 registers the
    same service while p0 serves, then after."""
    return b''.join([
        rec(0, register('kvs', 2)),
        rec(0, ica_create(8192, 3, 2)),
        rec(0, call(STATE_REGISTER, u32(ica(0)) + u32(0), 3)),
        rec(0, call(STATE_GET, seq=4)),
        rec(0, call(ICA_ATTACH, u32(ica(0)) + u32(0), 5)),
        rec(1, register('kvs', 3)),
        rec(0, call(PANIC, name('bad state', 128), 6)),
        rec(1, register('kvs', 3)),
        rec(1, call(STATE_GET, seq=2)),
    ])

def kcall_malformed():
    """What the header checks refuse: a bad magic, a short header, a
    length that lies, a descriptor, a packet too large, an unknown op, a
    second call while one waits, and an empty packet."""
    return b''.join([
        rec(0, call(LOOKUP, name('x'), magic=0x1234)),
        rec(0, call(LOOKUP, name('x'))[:10]),
        rec(0, call(LOOKUP, name('x'), plen=31)),
        rec(1, call(LOOKUP, name('x')), fd=True),
        rec(1, call(LOOKUP, b'\0' * 600)),
        rec(1, call(99)),
        rec(2, call(SLEEP, u64(10 ** 9), 1)),
        rec(2, call(LOOKUP, name('x'), 2)),
        rec(2, b''),
    ])

seeds = {
    'client': {
        'classic': blocking(False), 'dotl': blocking(True),
        'keyed': blocking(True, key=True), 'dirs-classic': blocking_dirs(False),
        'dirs-dotl': blocking_dirs(True), 'errors': blocking_errors(False),
        'lerrors': blocking_errors(True),
    },
    'aclient': {
        'classic': async_seed(False, False), 'dotl': async_seed(True, False),
        'chained': async_seed(True, True),
        'reversed': async_seed(False, False, reverse=True),
        'flush-dotl': async_flush(True), 'flush': async_flush(False),
    },
    'kcall': {
        'roundtrip': kcall_roundtrip(), 'async': kcall_async(),
        'state': kcall_state(), 'malformed': kcall_malformed(),
    },
}
for sub, files in seeds.items():
    os.makedirs(os.path.join(here, 'corpus', sub), exist_ok=True)
    for fname, data in files.items():
        with open(os.path.join(here, 'corpus', sub, fname), 'wb') as f:
            f.write(data)
