build/obj/route.o: src/route.c src/route.h src/taskkey.h src/conf.h \
 src/keyslot.h
src/route.h:
src/taskkey.h:
src/conf.h:
src/keyslot.h:
