#!/usr/bin/python3
"""Runs the ring-builder scenarios of bench/ring/run.mjs on Swift's own RingBuilder
(python3-swift), timing rebalance() only, and prints one JSON object per scenario."""
import copy
import json
import sys
import time

from swift.common.ring.builder import RingBuilder

SEED = 1


def p14_cluster():
    b = RingBuilder(14, 3, 1)
    weights = [100, 200, 400]
    i = 0
    for r in range(1, 4):
        for z in range(1, 5):
            for d in range(8):
                b.add_dev({'region': r, 'zone': z, 'ip': '10.%d.%d.%d' % (r, z, 1 + d // 4),
                           'port': 6200, 'device': 'sd%d' % d, 'weight': weights[i % 3]})
                i += 1
    return b


def flat_cluster():
    b = RingBuilder(14, 3, 1)
    for z in range(1, 5):
        for h in range(1, 3):
            for d in range(3):
                b.add_dev({'region': 1, 'zone': z, 'ip': '10.0.%d.%d' % (z, h), 'port': 6200,
                           'device': 'sd%d' % d, 'weight': 100})
    return b


def p18_cluster():
    b = RingBuilder(18, 3, 1)
    for i in range(100):
        z = i % 5
        b.add_dev({'region': 1, 'zone': 1 + z, 'ip': '10.0.%d.%d' % (z, 1 + (i // 5) % 4),
                   'port': 6200, 'device': 'sd%d' % i, 'weight': 100})
    return b


def measure(name, b, ideal=None, repeat=1):
    """Rebalances copies of b `repeat` times; reports the fastest (wall and cpu) and the
    result of the last one (same seed, so the same ring each time). b is left rebalanced."""
    data = copy.deepcopy(b.to_dict())
    best_wall = best_cpu = float('inf')
    for i in range(repeat):
        if i:
            b = RingBuilder(data['part_power'], data['replicas'], data['min_part_hours'])
            b.copy_from(copy.deepcopy(data))
        t = time.perf_counter()
        c = time.process_time()
        changed, balance, removed = b.rebalance(seed=SEED)
        best_wall = min(best_wall, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    b.validate()
    out = {'scenario': name, 'seconds': best_wall, 'cpu': best_cpu, 'balance': balance,
           'dispersion': b.dispersion, 'moved': changed}
    if ideal is not None:
        out['ideal'] = ideal
    print(json.dumps(out))
    sys.stdout.flush()
    return b


def total_weight(b):
    return sum(d['weight'] for d in b.devs if d)


def main(which):
    if 'p14' in which:
        base = measure('p14-3r4z8d', p14_cluster(), repeat=3)
        data = base.to_dict()
        # adding one device of weight 200
        b = RingBuilder(14, 3, 1)
        b.copy_from(copy.deepcopy(data))
        b.pretend_min_part_hours_passed()
        w = 200
        ideal = w / (total_weight(b) + w) * b.parts * b.replicas
        b.add_dev({'region': 1, 'zone': 1, 'ip': '10.1.1.9', 'port': 6200, 'device': 'new', 'weight': w})
        measure('add-one-device', b, ideal, repeat=3)
        # changing one weight (device 0: 100 -> 200)
        b = RingBuilder(14, 3, 1)
        b.copy_from(copy.deepcopy(data))
        b.pretend_min_part_hours_passed()
        b.set_dev_weight(0, 200)
        measure('change-one-weight', b, repeat=3)
        # removing zone r1z1
        b = RingBuilder(14, 3, 1)
        b.copy_from(copy.deepcopy(data))
        b.pretend_min_part_hours_passed()
        zone_parts = sum(d['parts'] for d in b.devs if d and d['region'] == 1 and d['zone'] == 1)
        for d in list(b.devs):
            if d and d['region'] == 1 and d['zone'] == 1:
                b.remove_dev(d['id'])
        measure('remove-zone', b, zone_parts, repeat=3)
    if 'flat' in which:
        flat = measure('flat-p14-24dev', flat_cluster(), repeat=1)
        data = copy.deepcopy(flat.to_dict())
        b = RingBuilder(14, 3, 1)
        b.copy_from(data)
        b.pretend_min_part_hours_passed()
        ideal = 100.0 / (total_weight(b) + 100) * b.parts * b.replicas
        b.add_dev({'region': 1, 'zone': 1, 'ip': '10.0.1.3', 'port': 6200, 'device': 'new', 'weight': 100})
        measure('flat-add-one-device', b, ideal, repeat=3)
    if 'p18' in which:
        measure('p18-100dev', p18_cluster())


if __name__ == '__main__':
    main(sys.argv[1:] or ['p14', 'flat', 'p18'])
