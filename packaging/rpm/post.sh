if [ $1 -eq 1 ] && [ -x /usr/bin/systemctl ]; then
	/usr/bin/systemctl --no-reload preset clusterd.service >/dev/null 2>&1 || :
fi
