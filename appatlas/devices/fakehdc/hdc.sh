#!/usr/bin/env bash
# The `hdc` command of appatlas' HarmonyOS stand-in, in bash: hmdriver2 starts one hdc process
# per device call, and bash with /dev/tcp starts in ~2 ms where Python takes 15-40 ms.
# Same framing as _client.py (see there): request = NUL-terminated fields (count, serial, argv...,
# body size) + body; reply = "CODE\n" + payload until the server closes.
host=127.0.0.1
port=${OHOS_HDC_SERVER_PORT:-8710}
serial=
while [[ $# -ge 2 && ( $1 == -s || $1 == -t || $1 == -l ) ]]; do
  case $1 in
    -s) host=${2%:*}; port=${2##*:}; [[ -z $host ]] && host=127.0.0.1 ;;
    -t) serial=$2 ;;
  esac
  shift 2
done
if [[ $# -eq 0 ]]; then echo "[Fail]no command; e.g. hdc list targets"; exit 1; fi
if ! exec 3<>"/dev/tcp/$host/$port" 2>/dev/null; then
  echo "[Fail]Connect server failed: $host:$port"
  exit 1
fi
body=
if [[ $1 == file && $2 == send && $# -ge 4 ]]; then
  body=${*: -2:1}
  if [[ ! -r $body ]]; then echo "[Fail]Error opening file: no such file or directory, path:$body"; exit 1; fi
fi
{
  printf '%d\0%s\0' $(($# + 1)) "$serial"
  printf '%s\0' "$@"
  if [[ -n $body ]]; then printf '%d\0' "$(wc -c < "$body")"; cat -- "$body"; else printf '0\0'; fi
} >&3
IFS= read -r code <&3 || { echo "[Fail]the hdc server closed the connection without an answer"; exit 1; }
if [[ $1 == file && $2 == recv && $# -ge 4 && $code == 0 ]]; then
  target=${*: -1}
  [[ -d $target ]] && target=$target/$(basename -- "${*: -2:1}")
  if ! cat <&3 > "$target"; then echo "[Fail]Error opening file: cannot write, path:$target"; exit 1; fi
  echo "FileTransfer finish, Size:$(wc -c < "$target"), File count = 1"
else
  cat <&3
fi
exit "$code"
