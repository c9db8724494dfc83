build/obj/slotmap.o: src/slotmap.c src/slotmap.h
src/slotmap.h:
