build/obj/slotd.o: src/slotd.c src/conf.h src/conn.h src/backoff.h \
 src/ctx.h src/keys.h src/taskkey.h src/dispatch.h src/log.h \
 src/members.h src/slotmap.h
src/conf.h:
src/conn.h:
src/backoff.h:
src/ctx.h:
src/keys.h:
src/taskkey.h:
src/dispatch.h:
src/log.h:
src/members.h:
src/slotmap.h:
