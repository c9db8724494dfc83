build/obj/members.o: src/members.c src/members.h src/keys.h src/slotmap.h \
 src/ctx.h src/conf.h src/conn.h src/backoff.h src/taskkey.h \
 src/dispatch.h src/log.h
src/members.h:
src/keys.h:
src/slotmap.h:
src/ctx.h:
src/conf.h:
src/conn.h:
src/backoff.h:
src/taskkey.h:
src/dispatch.h:
src/log.h:
