#!/usr/bin/python3
"""Replication benchmark, Swift side: populate storage policy 1 of the SAIO anchor.

Wipes objects-1 on d1..d4, then writes N objects that all have a replica on d1, through Swift's
own DiskFileManager, to their two other primaries (d1 stays empty: a wiped device), and warms the
hash caches (hashes.pkl) of d2..d4 as a cluster that was in sync would have them.
fsync is skipped during population only (not timed; the replicator and rsync run unpatched).

With INSYNC_ONLY=1 in the environment d1 gets its replicas too (an in-sync cluster, for (d)).

usage: /usr/bin/python3 swift_populate.py N OBJECT_BYTES
"""
import os
import shutil
import sys
import time

import swift.common.utils as su
import swift.obj.diskfile as sd
from swift.common.ring import Ring
from swift.common.storage_policy import POLICIES
from swift.common.utils import Timestamp, hash_path
from swift.common.utils import get_logger

ANCHOR = '/tmp/anchor-swift'
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
SIZE = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
INSYNC_ONLY = os.environ.get('INSYNC_ONLY') == '1'

noop = lambda *a, **k: None
su.fsync = noop
su.fdatasync = noop
su.fsync_dir = noop
sd.fsync = noop
sd.fdatasync = noop
sd.fsync_dir = noop
os.fsync = noop
os.fdatasync = noop

policy = POLICIES[1]
ring = Ring(os.path.join(ANCHOR, 'etc'), ring_name='object-1')
dev_of = {d['device']: d for d in ring.devs if d}
node_dir = {d: os.path.join(ANCHOR, 'srv', d[1:], 'node') for d in dev_of}

for d, root in node_dir.items():
    shutil.rmtree(os.path.join(root, d, 'objects-1'), ignore_errors=True)
    shutil.rmtree(os.path.join(root, d, 'tmp'), ignore_errors=True)

logger = get_logger({}, log_route='bench')
mgrs = {d: sd.DiskFileManager({'devices': node_dir[d], 'mount_check': 'false'}, logger) for d in dev_of}

t0 = time.time()
written = 0
i = 0
base = time.time() - 3600
while written < N:
    name = 'obj-%d' % i
    part, nodes = ring.get_nodes('a', 'c', name)
    ts = Timestamp(base + i / 1000.0)
    i += 1
    devs = [n['device'] for n in nodes]
    if 'd1' not in devs:
        continue
    written += 1
    body = os.urandom(SIZE)
    for d in devs:
        if d == 'd1' and not INSYNC_ONLY:
            continue
        df = mgrs[d].get_diskfile(d, str(part), 'a', 'c', name, policy=policy)
        with df.create(size=SIZE) as writer:
            writer.write(body)
            import hashlib
            writer.put({'name': '/a/c/' + name, 'X-Timestamp': ts.internal, 'Content-Length': str(SIZE),
                        'ETag': hashlib.md5(body).hexdigest(), 'Content-Type': 'application/octet-stream'})
            writer.commit(ts)

for d in dev_of:
    if d == 'd1' and not INSYNC_ONLY:
        continue
    objdir = os.path.join(node_dir[d], d, 'objects-1')
    for p in os.listdir(objdir) if os.path.isdir(objdir) else []:
        mgrs[d].get_hashes(d, p, [], policy)
print('populated %d objects in %.1f s' % (written, time.time() - t0))
