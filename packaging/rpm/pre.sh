getent group clusterd >/dev/null || groupadd -r clusterd
getent passwd clusterd >/dev/null || useradd -r -g clusterd -d /var/lib/clusterd -s /sbin/nologin -c "clusterd daemon" clusterd
exit 0
