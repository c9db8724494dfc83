build/obj/dispatch.o: src/dispatch.c src/dispatch.h src/ctx.h src/conf.h \
 src/conn.h src/backoff.h src/keys.h src/taskkey.h src/deadletter.h \
 src/log.h src/members.h src/slotmap.h src/route.h
src/dispatch.h:
src/ctx.h:
src/conf.h:
src/conn.h:
src/backoff.h:
src/keys.h:
src/taskkey.h:
src/deadletter.h:
src/log.h:
src/members.h:
src/slotmap.h:
src/route.h:
