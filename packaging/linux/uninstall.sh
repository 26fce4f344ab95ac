#!/bin/sh
# Remove what install.sh put under ~/.local, and nothing else: the library, settings and
# logs in ~/.local/share/krea-desktop stay (delete that folder yourself to remove them).
set -eu

APP_ID=ai.krea.KreaDesktop
data=${XDG_DATA_HOME:-$HOME/.local/share}
case $data in /*) ;; *) data=$HOME/.local/share ;; esac
opt=$HOME/.local/opt/krea-desktop
bin=$HOME/.local/bin

if [ -L "$bin/krea-desktop" ] && [ "$(readlink "$bin/krea-desktop")" = "$opt/krea-desktop" ]; then
  rm -f "$bin/krea-desktop"
fi
rm -f "$data/applications/$APP_ID.desktop"
rm -f "$data/metainfo/$APP_ID.metainfo.xml"
for icon in "$data"/icons/hicolor/*/apps/$APP_ID.png; do
  if [ -e "$icon" ]; then rm -f "$icon"; fi
done
rm -rf "$opt" "$opt.new"

if command -v update-desktop-database >/dev/null 2>&1 && [ -d "$data/applications" ]; then
  update-desktop-database -q "$data/applications" || true
  # A cache that no longer lists anything is only what installing left behind.
  cache=$data/applications/mimeinfo.cache
  if [ -f "$cache" ] && ! grep -qv -e '^\[MIME Cache\]$' -e '^$' "$cache"; then
    rm -f "$cache"
  fi
fi
if [ -f "$data/icons/hicolor/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null 2>&1; then
  gtk-update-icon-cache -q -t -f "$data/icons/hicolor" || true
fi

echo "Removed Krea Desktop from $opt. Your library and settings are still in $data/krea-desktop."
