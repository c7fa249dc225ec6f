# Times one object replicator pass (policy 1) of a Swift node the way its own "replication
# complete" figure does: from the start of run_once, after the process started and loaded its
# config. Prints {"passS": seconds}.
import json, sys, time
from swift.common.utils import readconf
from swift.obj.replicator import ObjectReplicator
conf = readconf(sys.argv[1], 'object-replicator')
r = ObjectReplicator(conf)
t0 = time.time()
r.run_once(policies='1')
print(json.dumps({"passS": time.time() - t0}))
