#!/usr/bin/env bash
# The end-to-end scenario on a real cluster (kind). Needs Docker, kind, kubectl and helm;
# it cannot run on lifeboat's own CI machines (no Docker engine there), but its manifests
# are applied to kube-sandbox by tests/e2e_kind_manifests.rs so they stay valid.
#
#   tests/e2e/kind/run.sh            # create cluster "lifeboat-e2e", run, keep it for a look
#   KEEP=0 tests/e2e/kind/run.sh     # delete the cluster at the end
set -euo pipefail
cd "$(dirname "$0")/../../.."
here=tests/e2e/kind
cluster=${CLUSTER:-lifeboat-e2e}
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 2; }
done

kind get clusters | grep -qx "$cluster" || kind create cluster --name "$cluster"
docker build -t lifeboat:e2e .
kind load docker-image lifeboat:e2e --name "$cluster"

kubectl apply --server-side -f crds/
helm upgrade --install lifeboat charts/lifeboat -n lifeboat-system --create-namespace -f "$here/values-kind.yaml" --wait
kubectl apply -f "$here/manifests/00-namespace.yaml" -f "$here/manifests/10-postgres.yaml" -f "$here/manifests/20-s3.yaml"
kubectl -n shop rollout status statefulset/pg-a --timeout=180s
kubectl -n shop rollout status statefulset/pg-b --timeout=300s
kubectl -n shop wait --for=condition=complete job/make-bucket --timeout=180s
kubectl apply -f "$here/manifests/30-lifeboat.yaml"
kubectl -n shop wait --for=condition=Ready recoveryplan/orders --timeout=120s
kubectl -n shop wait --for=condition=Available backupstore/in-cluster-s3 --timeout=120s
kubectl -n shop get rp,bs

echo "== the shop writes through pg-writer; the primary dies"
kubectl -n shop run shop --image=postgres:17 --restart=Never --env=PGPASSWORD=kind-e2e-password -- \
  sh -c 'psql -h pg-writer -U postgres -c "CREATE TABLE IF NOT EXISTS orders (id serial primary key)"; while true; do psql -h pg-writer -U postgres -c "INSERT INTO orders DEFAULT VALUES" >/dev/null 2>&1 && echo ok || echo fail; sleep 0.1; done'
kubectl -n shop wait --for=condition=Ready pod/shop --timeout=120s
kubectl -n shop delete pod pg-a-0 --grace-period=0 --force
kubectl -n shop scale statefulset pg-a --replicas=0
for _ in $(seq 1 60); do
  phase=$(kubectl -n shop get failover -o jsonpath='{.items[0].status.phase}' 2>/dev/null || true)
  [ "$phase" = Completed ] && break
  sleep 1
done
kubectl -n shop get fo -o wide
[ "$phase" = Completed ] || { echo "failover did not complete ($phase)" >&2; exit 1; }

echo "== a backup after the failover"
kubectl apply -f "$here/manifests/40-drill.yaml"
kubectl -n shop wait --for=jsonpath='{.status.phase}'=Completed backup/after-failover --timeout=180s
kubectl -n shop get bk
kubectl -n shop logs shop | sort | uniq -c
[ "${KEEP:-1}" = 0 ] && kind delete cluster --name "$cluster"
echo "kind e2e passed"
