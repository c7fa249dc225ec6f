/**
 * Which container replicas each object PUT/DELETE slot updates (X-Container-Host/-Device).
 *
 * Swift's rule sets how many: the container replicas are dealt out over the slots in turn until
 * every one is named and enough are for a container quorum to hear of the object even when only an
 * object quorum succeeds. Which replica goes to which slot is ours: a slot is given, where it can
 * be, the container replica on the same device of the same node as its object replica (then one on
 * the same node), so that a node running both servers in one process (swiftlet-storage-server)
 * applies the update without an HTTP request (@swiftlet/object-server LocalContainerServer).
 * Swift deals them in ring order. Slot i is the i-th object primary: the slots take the primaries
 * in ring order (a handoff that stands in for one takes its slot's targets).
 */
import { quorumSize } from './quorum.js';

interface Located {
  ip: string;
  device: string;
}

/** Object replica and container replica, from the best pairing to any. */
const PAIRINGS: readonly ((o: Located, c: Located) => boolean)[] = [
  (o, c) => o.ip === c.ip && o.device === c.device,
  (o, c) => o.ip === c.ip,
  () => true,
];

/** For each slot, the container replicas it updates (indexes into `containerNodes`). */
export function pairContainerTargets(objectNodes: readonly Located[], containerNodes: readonly Located[]): number[][] {
  const slots = objectNodes.length;
  const out: number[][] = Array.from({ length: slots }, () => []);
  if (slots === 0 || containerNodes.length === 0) return out;
  const needed = Math.max(quorumSize(containerNodes.length) + slots - quorumSize(slots), containerNodes.length);
  const room: number[] = out.map(() => 0);
  for (let k = 0; k < needed; k++) (room[k % slots] as number)++;
  const targets = Array.from({ length: needed }, (_, k) => k % containerNodes.length);
  const placed = targets.map(() => false);
  for (const match of PAIRINGS) {
    targets.forEach((t, k) => {
      if (placed[k]) return;
      const c = containerNodes[t] as Located;
      for (let s = 0; s < slots; s++) {
        const slot = out[s] as number[];
        if ((room[s] as number) > 0 && !slot.includes(t) && match(objectNodes[s] as Located, c)) {
          slot.push(t);
          (room[s] as number)--;
          placed[k] = true;
          return;
        }
      }
    });
  }
  // Only a target that every slot with room already names is left: it goes in twice rather than not at all.
  targets.forEach((t, k) => {
    if (placed[k]) return;
    const s = room.findIndex((r) => r > 0);
    (out[s] as number[]).push(t);
    (room[s] as number)--;
  });
  return out;
}
