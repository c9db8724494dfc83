build/obj/conn.o: src/conn.c src/conn.h src/backoff.h src/conf.h \
 src/log.h
src/conn.h:
src/backoff.h:
src/conf.h:
src/log.h:
