#!/usr/bin/env python3
"""Writes the seed corpus for the net9p fuzz targets (corpus/decode and
corpus/srv): well-formed 9P2000 and 9P2000.L sessions built from the
message layouts in intro(5) and the 9P2000.L specification."""
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
