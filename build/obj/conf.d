build/obj/conf.o: src/conf.c src/conf.h src/log.h
src/conf.h:
src/log.h:
