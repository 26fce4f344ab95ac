#!/bin/sh
# Install the Krea Desktop bundle for the current user, under ~/.local:
#   ~/.local/opt/krea-desktop/                      the bundle (replaced on upgrade)
#   ~/.local/bin/krea-desktop                       a link to its launcher
#   ~/.local/share/applications/ai.krea.KreaDesktop.desktop
#   ~/.local/share/metainfo/ai.krea.KreaDesktop.metainfo.xml
#   ~/.local/share/icons/hicolor/<N>x<N>/apps/ai.krea.KreaDesktop.png
# (~/.local/share is $XDG_DATA_HOME when that is set.) The library, settings and logs in
# ~/.local/share/krea-desktop are never touched.
#
# Usage: install.sh [BUNDLE]   BUNDLE defaults to the folder holding this script when it is
# a built bundle, else dist/krea-desktop of the source tree.
set -eu

APP_ID=ai.krea.KreaDesktop
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ge 1 ]; then
  bundle=$1
elif [ -x "$here/krea-desktop" ]; then
  bundle=$here
else
  bundle=$here/../../dist/krea-desktop
fi
if [ ! -x "$bundle/krea-desktop" ] || [ ! -d "$bundle/share/applications" ]; then
  echo "install.sh: no built bundle at $bundle; build it with: python packaging/build.py" >&2
  exit 1
fi
bundle=$(cd "$bundle" && pwd)

data=${XDG_DATA_HOME:-$HOME/.local/share}
case $data in /*) ;; *) data=$HOME/.local/share ;; esac
opt=$HOME/.local/opt/krea-desktop
bin=$HOME/.local/bin

# The bundle: copy beside the old one, then swap, so an upgrade never leaves half of each.
mkdir -p "$HOME/.local/opt"
rm -rf "$opt.new"
mkdir "$opt.new"
cp -R "$bundle/krea-desktop" "$bundle/_internal" "$opt.new/"
cp "$here/uninstall.sh" "$opt.new/uninstall.sh"
rm -rf "$opt"
mv "$opt.new" "$opt"

# The command, unless something else already owns that name.
mkdir -p "$bin"
if [ -L "$bin/krea-desktop" ] || [ ! -e "$bin/krea-desktop" ]; then
  ln -sfn "$opt/krea-desktop" "$bin/krea-desktop"
else
  echo "install.sh: left $bin/krea-desktop as it was (not a link to this bundle); the menu entry runs $opt/krea-desktop" >&2
fi

# The menu entry runs the launcher by its full path, so it works whatever PATH the desktop has.
case $opt in
  *[!A-Za-z0-9/._-]*) exec_path="\"$opt/krea-desktop\"" ;;
  *) exec_path=$opt/krea-desktop ;;
esac
mkdir -p "$data/applications" "$data/metainfo"
sed -e "s|^Exec=krea-desktop|Exec=$exec_path|" -e "s|^TryExec=krea-desktop|TryExec=$opt/krea-desktop|" \
  "$bundle/share/applications/$APP_ID.desktop" > "$data/applications/$APP_ID.desktop"
cp "$bundle/share/metainfo/$APP_ID.metainfo.xml" "$data/metainfo/$APP_ID.metainfo.xml"
for icon in "$bundle"/share/icons/hicolor/*/apps/$APP_ID.png; do
  size=$(basename "$(dirname "$(dirname "$icon")")")
  mkdir -p "$data/icons/hicolor/$size/apps"
  cp "$icon" "$data/icons/hicolor/$size/apps/$APP_ID.png"
done

# Let the menu and "Open With" see it now rather than at next login.
if command -v update-desktop-database >/dev/null 2>&1; then
  update-desktop-database -q "$data/applications" || true
fi
# Only refresh an icon cache that already exists: a new one would hide icons that later
# installs add without updating it.
if [ -f "$data/icons/hicolor/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null 2>&1; then
  gtk-update-icon-cache -q -t -f "$data/icons/hicolor" || true
fi

echo "Installed Krea Desktop in $opt; it is in the application menu as \"Krea Desktop\"."
echo "Run it from a terminal as $bin/krea-desktop; remove it with $opt/uninstall.sh."
