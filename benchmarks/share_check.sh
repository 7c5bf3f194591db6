#!/usr/bin/env bash
# A real network filesystem on one machine: sshfs (FUSE, SFTP over 127.0.0.1) mounted on a workspace,
# then what the store detects and does through it (docs/RELIABILITY.md, section 7). Needs root, /dev/fuse
# and `apt-get install sshfs openssh-server`; not part of `make test` (nothing of it is in requirements.txt).
# Prints one JSON object.
set -euo pipefail
cd "$(dirname "$0")/.."
D=$(mktemp -d /tmp/share-check-XXXX)
mkdir -p "$D/src" "$D/mnt" /run/sshd
ssh-keygen -q -t ed25519 -N "" -f "$D/hostkey"
ssh-keygen -q -t ed25519 -N "" -f "$D/userkey"
cp "$D/userkey.pub" "$D/authorized_keys"
cat > "$D/sshd_config" <<EOF
Port 2222
ListenAddress 127.0.0.1
HostKey $D/hostkey
PermitRootLogin prohibit-password
AuthorizedKeysFile $D/authorized_keys
StrictModes no
PidFile $D/sshd.pid
Subsystem sftp internal-sftp
EOF
/usr/sbin/sshd -f "$D/sshd_config"
cleanup() {
  fusermount -u "$D/mnt" 2>/dev/null || umount "$D/mnt" 2>/dev/null || true
  [ -f "$D/sshd.pid" ] && kill "$(cat "$D/sshd.pid")" 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
sleep 1
sshfs -p 2222 -o "IdentityFile=$D/userkey,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null" \
  "root@127.0.0.1:$D/src" "$D/mnt"
.venv/bin/python - "$D" <<'EOF'
import json, sys
from pathlib import Path
from tests.conftest import TEST_DATA
from training import sharing
from training.store import Workspace, WorkspaceError
d = Path(sys.argv[1])
with Workspace.open(d / "src" / "ws", create=True) as ws:   # made on the server's own disk
    ws.import_pair(TEST_DATA / "vf_0041.png", register=False)
out = {"fs_through_mount": sharing.filesystem_of(d / "mnt" / "ws").fstype}
for what, call in (("open", lambda: Workspace.open(d / "mnt" / "ws")),
                   ("create", lambda: Workspace.open(d / "mnt" / "new", create=True))):
    try:
        call().close()
        out[what] = "opened"
    except WorkspaceError as exc:
        out[what] = f"refused: {exc}"
out["create_left_nothing"] = not (d / "src" / "new").exists()
with Workspace.open(d / "mnt" / "ws", readonly=True) as ro:
    out["open_readonly"] = f"{len(ro.cases())} case(s) listed"
print(json.dumps(out))
EOF
