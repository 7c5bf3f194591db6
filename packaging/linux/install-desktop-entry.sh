#!/bin/sh
# Add ADF Viewer to this user's applications menu (or remove it with --uninstall).
#
# Run it once from the unpacked ADF-Viewer folder. It writes only under ~/.local/share
# (applications/adf-viewer.desktop and icons/hicolor/256x256/apps/adf-viewer.png), never needs
# root, and points the menu entry at the ADF-Viewer program beside this script. Moving the folder
# later means running it again.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
apps="$data/applications"
icons="$data/icons/hicolor/256x256/apps"

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$apps/adf-viewer.desktop" "$icons/adf-viewer.png"
    echo "ADF Viewer removed from the applications menu."
    exit 0
fi
if [ ! -x "$here/ADF-Viewer" ]; then
    echo "error: no ADF-Viewer program beside this script (in $here)" >&2
    exit 1
fi
case "$here" in
    *'"'* | *'`'* | *'$'* | *'\'*)
        echo "error: the folder path contains \" \` \$ or \\, which a menu entry cannot name: move the folder" >&2
        exit 1 ;;
esac
mkdir -p "$apps" "$icons"
cp "$here/_internal/resources/icons/adf-viewer.png" "$icons/adf-viewer.png"
esc=$(printf '%s' "$here" | sed 's/[&|]/\\&/g')
iesc=$(printf '%s' "$icons" | sed 's/[&|]/\\&/g')
sed -e "s|^Exec=.*|Exec=\"$esc/ADF-Viewer\"|" \
    -e "s|^TryExec=.*|TryExec=$esc/ADF-Viewer|" \
    -e "s|^Icon=.*|Icon=$iesc/adf-viewer.png|" \
    "$here/adf-viewer.desktop" > "$apps/adf-viewer.desktop.tmp"
mv "$apps/adf-viewer.desktop.tmp" "$apps/adf-viewer.desktop"
if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database "$apps" >/dev/null 2>&1 || true
fi
echo "ADF Viewer added to the applications menu ($apps/adf-viewer.desktop)."
